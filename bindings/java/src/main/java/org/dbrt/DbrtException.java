package org.dbrt;

/** A failed dbrt call: the C status (see include/dbrt.h) and its message. */
public final class DbrtException extends RuntimeException {
  private final int status;
  private final String statusName;

  DbrtException(int status, String statusName, String message) {
    super(statusName + ": " + message);
    this.status = status;
    this.statusName = statusName;
  }

  /** The dbrt_status value, e.g. 4 for DBRT_BUFFER_TOO_SMALL. */
  public int status() {
    return status;
  }

  /** The status's name, e.g. "DBRT_INVALID_UTF8". */
  public String statusName() {
    return statusName;
  }
}
