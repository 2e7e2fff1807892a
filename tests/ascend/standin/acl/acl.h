/* The stand-in's AscendCL header: the subset of CANN's acl/acl.h that dbrt uses. */
#ifndef DBRT_STANDIN_ACL_H
#define DBRT_STANDIN_ACL_H
#include "acl_base.h"
#include "acl_mdl.h"
#include "acl_rt.h"
#endif
