//! A pickle interpreter for exactly what `torch.save(state_dict)` writes, safe on hostile bytes.
//!
//! Values live in one arena and refer to each other by index: a memo reference shares a value,
//! never copies it, so references cannot expand; nothing recurses over values, so neither a deep
//! nesting nor a cycle can overflow the stack, here or when the arena is dropped. The stack, the
//! mark depth, the memo and the number of values are bounded.

use std::collections::HashMap;

pub type Id = u32;

/// Marks open at once: torch nests three.
pub const MAX_MARKS: usize = 64;
/// Values on the stack at once: torch batches 1000 dict items, 2000 values.
pub const MAX_STACK: usize = 1 << 16;
pub const MAX_MEMO: usize = 1 << 20;
/// Values created in all: about a dozen a tensor.
pub const MAX_VALUES: usize = 1 << 22;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    /// `torch <name>`, a storage class such as `FloatStorage`.
    Storage(Box<str>),
}

#[derive(Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(Box<str>),
    Tuple(Box<[Id]>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Global(Global),
    PersId(Id),
    /// A call of one of torch's rebuild functions, left for the caller to interpret.
    Call(Global, Id),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError {
    pub offset: usize,
    /// The opcode at `offset`; none past the end.
    pub op: Option<u8>,
    pub what: String,
}

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.op {
            Some(op) => {
                let c = if op.is_ascii_graphic() {
                    op as char
                } else {
                    '?'
                };
                write!(
                    f,
                    "pickle: {} (opcode {op:#04x} {c:?} at offset {})",
                    self.what, self.offset
                )
            }
            None => write!(f, "pickle: {} (at offset {})", self.what, self.offset),
        }
    }
}

impl std::error::Error for PickleError {}

/// The values of one pickle, and which of them is its result.
pub struct Pickle {
    values: Vec<Value>,
    pub root: Id,
}

impl Pickle {
    pub fn get(&self, id: Id) -> &Value {
        // Every Id handed out indexes `values`.
        &self.values[id as usize]
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    values: Vec<Value>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
}

type Step<T> = std::result::Result<T, String>;

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Step<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("truncated: {n} more bytes expected"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn arg<const N: usize>(&mut self) -> Step<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }
    fn line(&mut self) -> Step<&str> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .take(256)
            .position(|&b| b == b'\n')
            .ok_or("a GLOBAL name without a newline within 256 bytes")?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| "a GLOBAL name is not UTF-8")?;
        self.pos += n + 1;
        Ok(s)
    }
    fn new_value(&mut self, v: Value) -> Step<Id> {
        if self.values.len() >= MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values"));
        }
        self.values.push(v);
        Ok((self.values.len() - 1) as Id)
    }
    fn push(&mut self, id: Id) -> Step<()> {
        if self.stack.len() >= MAX_STACK {
            return Err(format!("more than {MAX_STACK} values on the stack"));
        }
        self.stack.push(id);
        Ok(())
    }
    fn push_new(&mut self, v: Value) -> Step<()> {
        let id = self.new_value(v)?;
        self.push(id)
    }
    /// The top of the stack, which may not lie below the innermost mark.
    fn pop(&mut self) -> Step<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".into());
        }
        Ok(self.stack.pop().expect("above the floor"))
    }
    fn top(&self) -> Step<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.len() {
            n if n > floor => Ok(self.stack[n - 1]),
            _ => Err("stack underflow".into()),
        }
    }
    /// The values pushed since the innermost mark, which is closed.
    fn pop_mark(&mut self) -> Step<Vec<Id>> {
        let m = self.marks.pop().ok_or("no MARK to close")?;
        Ok(self.stack.split_off(m))
    }
    fn string(&mut self, n: usize) -> Step<()> {
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| "a string is not UTF-8")?;
        let s: Box<str> = s.into();
        self.push_new(Value::Str(s))
    }
    fn put(&mut self, key: u32) -> Step<()> {
        let id = self.top()?;
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&key) {
            return Err(format!("more than {MAX_MEMO} memo entries"));
        }
        self.memo.insert(key, id);
        Ok(())
    }
    fn get(&mut self, key: u32) -> Step<()> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| format!("memo entry {key} was never stored"))?;
        self.push(id)
    }
    fn global(&mut self, module: &str, name: &str) -> Step<()> {
        let g = match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch", s)
                if s.len() <= 32
                    && s.ends_with("Storage")
                    && s.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Global::Storage(s.into())
            }
            _ => return Err(format!("unsupported GLOBAL '{module} {name}'")),
        };
        self.push_new(Value::Global(g))
    }
    fn tuple(&mut self, items: Vec<Id>) -> Step<()> {
        self.push_new(Value::Tuple(items.into_boxed_slice()))
    }
    fn setitems(&mut self, items: Vec<Id>) -> Step<()> {
        if !items.len().is_multiple_of(2) {
            return Err("an odd number of values for SETITEMS".into());
        }
        let target = self.top()?;
        match &mut self.values[target as usize] {
            Value::Dict(d) => {
                d.extend(items.chunks_exact(2).map(|kv| (kv[0], kv[1])));
                Ok(())
            }
            _ => Err("SETITEM(S) on a value that is not a dict".into()),
        }
    }
    fn appends(&mut self, items: Vec<Id>) -> Step<()> {
        let target = self.top()?;
        match &mut self.values[target as usize] {
            Value::List(l) => {
                l.extend(items);
                Ok(())
            }
            _ => Err("APPEND(S) on a value that is not a list".into()),
        }
    }
    fn reduce(&mut self) -> Step<()> {
        let args = self.pop()?;
        let func = self.pop()?;
        let Value::Tuple(a) = &self.values[args as usize] else {
            return Err("REDUCE arguments are not a tuple".into());
        };
        let v = match &self.values[func as usize] {
            Value::Global(Global::OrderedDict) if a.is_empty() => Value::Dict(Vec::new()),
            Value::Global(Global::OrderedDict) => {
                return Err("OrderedDict called with arguments".into())
            }
            Value::Global(g @ (Global::RebuildTensorV2 | Global::RebuildParameter)) => {
                Value::Call(g.clone(), args)
            }
            Value::Global(Global::Storage(s)) => return Err(format!("a call of torch.{s}")),
            _ => return Err("REDUCE of a value that is not a callable".into()),
        };
        self.push_new(v)
    }

    fn step(&mut self, op: u8) -> Step<bool> {
        match op {
            0x80 => {
                // PROTO: 2 is what torch writes; 3 to 5 only add opcodes handled or refused.
                let [v] = self.arg()?;
                if !(2..=5).contains(&v) {
                    return Err(format!("pickle protocol {v}"));
                }
            }
            0x95 => {
                // FRAME: a length hint; the frame's opcodes follow inline.
                self.arg::<8>()?;
            }
            b'.' => return Ok(true),
            b'(' => {
                if self.marks.len() >= MAX_MARKS {
                    return Err(format!("more than {MAX_MARKS} nested MARKs"));
                }
                self.marks.push(self.stack.len());
            }
            b'}' => self.push_new(Value::Dict(Vec::new()))?,
            b']' => self.push_new(Value::List(Vec::new()))?,
            b')' => self.tuple(Vec::new())?,
            b't' => {
                let items = self.pop_mark()?;
                self.tuple(items)?;
            }
            0x85 => {
                let a = self.pop()?;
                self.tuple(vec![a])?;
            }
            0x86 => {
                let b = self.pop()?;
                let a = self.pop()?;
                self.tuple(vec![a, b])?;
            }
            0x87 => {
                let c = self.pop()?;
                let b = self.pop()?;
                let a = self.pop()?;
                self.tuple(vec![a, b, c])?;
            }
            b'N' => self.push_new(Value::None)?,
            0x88 => self.push_new(Value::Bool(true))?,
            0x89 => self.push_new(Value::Bool(false))?,
            b'J' => {
                let v = i32::from_le_bytes(self.arg()?);
                self.push_new(Value::Int(v.into()))?;
            }
            b'K' => {
                let [v] = self.arg()?;
                self.push_new(Value::Int(v.into()))?;
            }
            b'M' => {
                let v = u16::from_le_bytes(self.arg()?);
                self.push_new(Value::Int(v.into()))?;
            }
            0x8a => {
                // LONG1: a little-endian two's complement integer of n bytes.
                let [n] = self.arg()?;
                if n > 8 {
                    return Err(format!("a LONG1 of {n} bytes, more than 64 bits"));
                }
                let b = self.take(n as usize)?;
                let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                    [0xFF; 8]
                } else {
                    [0; 8]
                };
                buf[..b.len()].copy_from_slice(b);
                self.push_new(Value::Int(i64::from_le_bytes(buf)))?;
            }
            b'X' => {
                let n = u32::from_le_bytes(self.arg()?);
                self.string(n as usize)?;
            }
            0x8c => {
                let [n] = self.arg()?;
                self.string(n as usize)?;
            }
            0x8d => {
                let n = u64::from_le_bytes(self.arg()?);
                self.string(usize::try_from(n).unwrap_or(usize::MAX))?;
            }
            b'q' => {
                let [k] = self.arg()?;
                self.put(k.into())?;
            }
            b'r' => {
                let k = u32::from_le_bytes(self.arg()?);
                self.put(k)?;
            }
            0x94 => {
                // MEMOIZE: the next free memo key.
                let k = u32::try_from(self.memo.len()).map_err(|_| "memo full")?;
                self.put(k)?;
            }
            b'h' => {
                let [k] = self.arg()?;
                self.get(k.into())?;
            }
            b'j' => {
                let k = u32::from_le_bytes(self.arg()?);
                self.get(k)?;
            }
            b'c' => {
                let module = self.line()?.to_owned();
                let name = self.line()?.to_owned();
                self.global(&module, &name)?;
            }
            0x93 => {
                // STACK_GLOBAL: module and name as strings on the stack.
                let name = self.pop()?;
                let module = self.pop()?;
                match (&self.values[module as usize], &self.values[name as usize]) {
                    (Value::Str(m), Value::Str(n)) => {
                        let (m, n) = (m.to_string(), n.to_string());
                        self.global(&m, &n)?;
                    }
                    _ => return Err("STACK_GLOBAL of values that are not strings".into()),
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                self.push_new(Value::PersId(pid))?;
            }
            b'R' => self.reduce()?,
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.setitems(vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.setitems(items)?;
            }
            b'a' => {
                let v = self.pop()?;
                self.appends(vec![v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.appends(items)?;
            }
            b'b' => {
                // BUILD: the state torch gives a dict (its `_metadata`) is not needed.
                self.pop()?;
                self.top()?;
            }
            _ => return Err("unsupported opcode".into()),
        }
        Ok(false)
    }
}

/// Runs the pickle in `data` to its STOP.
pub fn parse(data: &[u8]) -> Result<Pickle, PickleError> {
    let mut m = Machine {
        data,
        pos: 0,
        values: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let offset = m.pos;
        let err = |what: String| PickleError {
            offset,
            op: data.get(offset).copied(),
            what,
        };
        let Some(&op) = data.get(offset) else {
            return Err(err("the pickle ends before its STOP".into()));
        };
        m.pos += 1;
        if m.step(op).map_err(err)? {
            let root = m.pop().map_err(err)?;
            return Ok(Pickle {
                values: m.values,
                root,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: &[u8]) -> PickleError {
        match parse(p) {
            Ok(_) => panic!("parsed"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_small_dict_parses() {
        // {'a': (1, -2, 300, 2^40)}
        let mut p = b"\x80\x02}q\x00X\x01\x00\x00\x00a(K\x01J\xfe\xff\xff\xffM\x2c\x01".to_vec();
        p.extend(b"\x8a\x06\x00\x00\x00\x00\x00\x01ts.");
        let pk = parse(&p).unwrap();
        let Value::Dict(d) = pk.get(pk.root) else {
            panic!()
        };
        assert_eq!(d.len(), 1);
        assert!(matches!(pk.get(d[0].0), Value::Str(s) if &**s == "a"));
        let Value::Tuple(t) = pk.get(d[0].1) else {
            panic!()
        };
        let ints: Vec<i64> = t
            .iter()
            .map(|&i| match pk.get(i) {
                Value::Int(v) => *v,
                _ => panic!(),
            })
            .collect();
        assert_eq!(ints, [1, -2, 300, 1 << 40]);
    }

    #[test]
    fn errors_name_the_opcode_and_offset() {
        let e = err(b"\x80\x02}G");
        assert_eq!((e.op, e.offset), (Some(b'G'), 3), "{e}");
        assert!(e.to_string().contains("unsupported opcode"), "{e}");
        let e = err(b"\x80\x02cos\nsystem\n");
        assert_eq!((e.op, e.offset), (Some(b'c'), 2));
        assert!(e.to_string().contains("'os system'"), "{e}");
        assert_eq!(
            err(b"\x80\x02").to_string(),
            "pickle: the pickle ends before its STOP (at offset 2)"
        );
        assert!(err(b"\x80\x02X\xff\xff\xff\xff")
            .to_string()
            .contains("truncated"));
        assert!(err(b"\x80\x02(s.").to_string().contains("underflow"));
    }

    #[test]
    fn random_sequences_of_its_opcodes_parse_or_are_refused() {
        // Drawn mostly from the opcodes it runs, so that runs get past the first few.
        const OPS: &[u8] =
            b"\x80\x95.(}])t\x85\x86\x87N\x88\x89JKM\x8aX\x8c\x8dqr\x94hjc\x93QRsuaeb";
        let mut next = crate::xorshift(0x2545_F491_4F6C_DD1D);
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..50_000 {
            let len = next() % 48;
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    match r % 8 {
                        0 => (r >> 8) as u8,
                        1 => (r >> 8) as u8 % 4,
                        _ => OPS[(r >> 8) as usize % OPS.len()],
                    }
                })
                .collect();
            match parse(&p) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(e.offset <= p.len(), "{e}");
                    refused += 1
                }
            }
        }
        assert!(ok > 100 && refused > 100, "{ok} parsed, {refused} refused");
    }
}
