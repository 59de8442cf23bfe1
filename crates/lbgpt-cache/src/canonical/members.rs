//! Canonical JSON straight from `Serialize`: the members of a request object, each value
//! already in canonical form, without a [`serde_json::Value`] tree in between.
//!
//! Building a `Value` copies every string of the request into a tree of maps and vectors
//! (dropped right after); here values are written once into one buffer, and each object's
//! members are put in order when the object ends (one copy of that object's bytes). The bytes
//! are those [`write_canonical`](super::write_canonical) writes for the `Value` that
//! `serde_json::to_value` would have built: what serde_json's value serializer turns into a
//! number, `null`, a string, an array or an object becomes the same here (non-finite floats
//! `null`, bytes an array of numbers, enum variants `{"Variant":...}`, integer map keys
//! strings).
//!
//! What this serializer does not model refuses with [`Unsupported`], and the caller takes the
//! `Value` way instead: map keys that are not strings, characters or integers, integers
//! beyond `i64`/`u64`, and serde_json's private structs (`RawValue`, `arbitrary_precision`
//! numbers). So the fast path never writes a different document; it only sometimes declines.

use super::value::{write_canonical, write_float, write_string};
use serde::ser::{self, Impossible, Serialize};
use std::fmt;
use std::io::Write;
use std::ops::Range;

/// Why [`members_of`] declined: the value holds something this serializer does not model (the
/// caller then canonicalises through a [`serde_json::Value`]).
#[derive(Debug)]
pub(crate) struct Unsupported(String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Unsupported(message.to_string())
    }
}

fn unsupported<T>(what: &str) -> Result<T, Unsupported> {
    Err(Unsupported(format!(
        "{what} is not modelled by the canonical serializer"
    )))
}

/// The members of a serialised object, sorted by name (a name given twice keeps its last
/// value), each value in canonical JSON.
#[derive(Debug)]
pub(crate) struct Members {
    names: String,
    values: Vec<u8>,
    members: Vec<(Range<usize>, Range<usize>)>,
}

impl Members {
    /// The members of a JSON object value (the way for what [`members_of`] declines); `None`
    /// if `value` is not an object.
    pub(crate) fn of_value(value: &serde_json::Value) -> Option<Members> {
        let object = value.as_object()?;
        let mut sorted: Vec<(&String, &serde_json::Value)> = object.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut members = Members {
            names: String::new(),
            values: Vec::new(),
            members: Vec::with_capacity(sorted.len()),
        };
        for (name, value) in sorted {
            let name_at = members.names.len();
            members.names.push_str(name);
            let value_at = members.values.len();
            // Writing to a Vec cannot fail.
            write_canonical(&mut members.values, value).ok()?;
            members
                .members
                .push((name_at..members.names.len(), value_at..members.values.len()));
        }
        Some(members)
    }

    /// How many bytes the names and values take (to size a document holding them).
    pub(crate) fn byte_len(&self) -> usize {
        self.names.len() + self.values.len() + 4 * self.members.len()
    }

    /// Each member's name and canonical value, in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.members.iter().map(|(name, value)| {
            (
                self.names.get(name.clone()).unwrap_or_default(),
                self.values.get(value.clone()).unwrap_or_default(),
            )
        })
    }
}

/// The members of `value`, which must serialise as a JSON object (a struct or a map), in
/// canonical JSON; [`Unsupported`] when it holds something the fast path does not model, or
/// is not an object.
pub(crate) fn members_of<T: Serialize + ?Sized>(value: &T) -> Result<Members, Unsupported> {
    let mut values = Vec::with_capacity(512);
    let mut top = None;
    value.serialize(Writer {
        out: &mut values,
        top: Some(&mut top),
    })?;
    let Some((names, members)) = top else {
        return unsupported("a request that is not a JSON object");
    };
    Ok(Members {
        names,
        values,
        members,
    })
}

/// The top-level object's names and its members in order, handed back instead of being
/// written out (see [`members_of`]).
type Collected = (String, Vec<(Range<usize>, Range<usize>)>);

/// Where the top-level object's members go: only the outermost object gets one.
type TopSlot<'a> = Option<&'a mut Option<Collected>>;

/// The members of an object being written: names in a side buffer, values in `out` in the
/// order they came; put in order by [`sorted`](Self::sorted).
struct Object<'a> {
    out: &'a mut Vec<u8>,
    /// Where the object's values begin in `out`.
    start: usize,
    names: String,
    members: Vec<(Range<usize>, Range<usize>)>,
    /// Inside `{"variant":...}`: closed with it.
    variant: bool,
    /// The top-level object of [`members_of`]: its members are handed back here instead of
    /// being written out.
    top: TopSlot<'a>,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>, top: TopSlot<'a>) -> Self {
        let start = out.len();
        Object {
            out,
            start,
            names: String::new(),
            members: Vec::new(),
            variant: false,
            top,
        }
    }

    fn value<T: Serialize + ?Sized>(
        &mut self,
        name: Range<usize>,
        value: &T,
    ) -> Result<(), Unsupported> {
        let from = self.out.len();
        value.serialize(Writer {
            out: self.out,
            top: None,
        })?;
        self.members.push((name, from..self.out.len()));
        Ok(())
    }

    fn named_value<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> Result<(), Unsupported> {
        let at = self.names.len();
        self.names.push_str(name);
        self.value(at..self.names.len(), value)
    }

    /// The members in name order, the last of equal names only.
    fn sorted(&mut self) -> Vec<(Range<usize>, Range<usize>)> {
        let names = &self.names;
        let name_of = |range: &Range<usize>| names.get(range.clone()).unwrap_or_default();
        let mut members = std::mem::take(&mut self.members);
        // Stable: among equal names the last written stays last, and is the one kept.
        members.sort_by(|a, b| name_of(&a.0).as_bytes().cmp(name_of(&b.0).as_bytes()));
        let mut kept: Vec<(Range<usize>, Range<usize>)> = Vec::with_capacity(members.len());
        for member in members {
            match kept.last_mut() {
                Some(last) if name_of(&last.0) == name_of(&member.0) => *last = member,
                _ => kept.push(member),
            }
        }
        kept
    }

    /// Rewrites the object's values in `out` as the canonical object (or, for the top-level
    /// object, hands its members back and leaves the values where they are).
    fn finish(mut self) -> Result<(), Unsupported> {
        let members = self.sorted();
        if let Some(top) = self.top.take() {
            *top = Some((std::mem::take(&mut self.names), members));
            return Ok(());
        }
        let values = self.out.split_off(self.start);
        self.out.push(b'{');
        for (index, (name, value)) in members.iter().enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            write_string(self.out, self.names.get(name.clone()).unwrap_or_default())
                .map_err(ser::Error::custom)?;
            self.out.push(b':');
            // `values` begins where the object began in `out`.
            let value = value.start - self.start..value.end - self.start;
            self.out
                .extend_from_slice(values.get(value).unwrap_or_default());
        }
        self.out.push(b'}');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

/// Writes one value in canonical JSON to `out`; `top`: the slot of [`members_of`]'s
/// top-level object, `None` for every value inside it.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    top: TopSlot<'a>,
}

impl Writer<'_> {
    fn raw(self, bytes: &[u8]) -> Result<(), Unsupported> {
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn display(self, value: impl fmt::Display) -> Result<(), Unsupported> {
        write!(self.out, "{value}").map_err(ser::Error::custom)
    }

    fn float(self, value: f64) -> Result<(), Unsupported> {
        if value.is_finite() {
            write_float(self.out, value).map_err(ser::Error::custom)
        } else {
            // serde_json's `Value` has no non-finite numbers: they become null.
            self.raw(b"null")
        }
    }
}

/// `{"variant":` before an enum variant's content (serde_json's externally tagged form).
fn open_variant(out: &mut Vec<u8>, variant: &str) -> Result<(), Unsupported> {
    out.push(b'{');
    write_string(out, variant).map_err(ser::Error::custom)?;
    out.push(b':');
    Ok(())
}

/// Serializer methods that take a plain value and write it with the writer's `$how`.
macro_rules! write_with {
    ($how:ident: $($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method(self, value: $ty) -> Result<(), Unsupported> {
                self.$how(value)
            }
        )*
    };
}

/// Serializer methods that decline: `method(argument types) -> return type`.
macro_rules! decline {
    ($what:literal: $($method:ident($($ty:ty),*) -> $ret:ty),* $(,)?) => {
        $(
            fn $method(self, $(_: $ty),*) -> Result<$ret, Unsupported> {
                unsupported($what)
            }
        )*
    };
}

impl<'a> ser::Serializer for Writer<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = MapWriter<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    write_with!(display: serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32),
        serialize_u64(u64));

    fn serialize_bool(self, value: bool) -> Result<(), Unsupported> {
        self.raw(if value { b"true" } else { b"false" })
    }
    fn serialize_i128(self, value: i128) -> Result<(), Unsupported> {
        match i64::try_from(value) {
            Ok(small) => self.display(small),
            Err(_) => match u64::try_from(value) {
                Ok(unsigned) => self.display(unsigned),
                Err(_) => unsupported("an integer beyond 64 bits"),
            },
        }
    }
    fn serialize_u128(self, value: u128) -> Result<(), Unsupported> {
        match u64::try_from(value) {
            Ok(small) => self.display(small),
            Err(_) => unsupported("an integer beyond 64 bits"),
        }
    }
    fn serialize_f32(self, value: f32) -> Result<(), Unsupported> {
        self.float(f64::from(value))
    }
    fn serialize_f64(self, value: f64) -> Result<(), Unsupported> {
        self.float(value)
    }
    fn serialize_char(self, value: char) -> Result<(), Unsupported> {
        self.serialize_str(value.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, value: &str) -> Result<(), Unsupported> {
        write_string(self.out, value).map_err(ser::Error::custom)
    }
    fn serialize_bytes(self, value: &[u8]) -> Result<(), Unsupported> {
        let mut array = Array::open(self.out);
        for byte in value {
            array.element(byte)?;
        }
        array.close()
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.raw(b"null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.raw(b"null")
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        self.raw(b"null")
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        open_variant(self.out, variant)?;
        value.serialize(Writer {
            out: self.out,
            top: None,
        })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'a>, Unsupported> {
        Ok(Array::open(self.out))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Array<'a>, Unsupported> {
        Ok(Array::open(self.out))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Array<'a>, Unsupported> {
        Ok(Array::open(self.out))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Array<'a>, Unsupported> {
        open_variant(self.out, variant)?;
        let mut array = Array::open(self.out);
        array.variant = true;
        Ok(array)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapWriter<'a>, Unsupported> {
        Ok(MapWriter {
            object: Object::new(self.out, self.top),
            key: None,
        })
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Object<'a>, Unsupported> {
        if name.starts_with("$serde_json::private::") {
            return unsupported(name);
        }
        Ok(Object::new(self.out, self.top))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Object<'a>, Unsupported> {
        open_variant(self.out, variant)?;
        let mut object = Object::new(self.out, None);
        object.variant = true;
        Ok(object)
    }
}

/// An array being written; `variant`: inside `{"variant":...}`, closed with it.
struct Array<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    variant: bool,
}

impl<'a> Array<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'[');
        Array {
            out,
            first: true,
            variant: false,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        value.serialize(Writer {
            out: self.out,
            top: None,
        })
    }

    fn close(self) -> Result<(), Unsupported> {
        self.out.push(b']');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

/// The serde traits of the sequence shapes, all written as an [`Array`]: `(trait, method)`.
macro_rules! array_shapes {
    ($(($shape:ident, $method:ident)),* $(,)?) => {
        $(
            impl ser::$shape for Array<'_> {
                type Ok = ();
                type Error = Unsupported;
                fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
                    self.element(value)
                }
                fn end(self) -> Result<(), Unsupported> {
                    self.close()
                }
            }
        )*
    };
}

array_shapes!(
    (SerializeSeq, serialize_element),
    (SerializeTuple, serialize_element),
    (SerializeTupleStruct, serialize_field),
    (SerializeTupleVariant, serialize_field),
);

/// The serde traits of the struct shapes, both written as an [`Object`].
macro_rules! struct_shapes {
    ($($shape:ident),*) => {
        $(
            impl ser::$shape for Object<'_> {
                type Ok = ();
                type Error = Unsupported;
                fn serialize_field<T: Serialize + ?Sized>(
                    &mut self,
                    name: &'static str,
                    value: &T,
                ) -> Result<(), Unsupported> {
                    self.named_value(name, value)
                }
                fn end(self) -> Result<(), Unsupported> {
                    self.finish()
                }
            }
        )*
    };
}

struct_shapes!(SerializeStruct, SerializeStructVariant);

/// A map being written: its object, and the range of the name given to the pending value.
struct MapWriter<'a> {
    object: Object<'a>,
    key: Option<Range<usize>>,
}

impl ser::SerializeMap for MapWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        let at = self.object.names.len();
        key.serialize(KeyWriter {
            names: &mut self.object.names,
        })?;
        self.key = Some(at..self.object.names.len());
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        match self.key.take() {
            Some(name) => self.object.value(name, value),
            None => unsupported("a map value without a key"),
        }
    }
    fn end(self) -> Result<(), Unsupported> {
        self.object.finish()
    }
}

/// Writes a map key into an object's names, as serde_json's map keys become strings: strings
/// and characters as they are, integers and booleans as their text; other keys decline.
struct KeyWriter<'a> {
    names: &'a mut String,
}

impl KeyWriter<'_> {
    fn text(self, text: &str) -> Result<(), Unsupported> {
        self.names.push_str(text);
        Ok(())
    }

    fn display(self, value: impl fmt::Display) -> Result<(), Unsupported> {
        use std::fmt::Write as _;
        write!(self.names, "{value}").map_err(ser::Error::custom)
    }
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Impossible<(), Unsupported>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    write_with!(text: serialize_str(&str));
    write_with!(display: serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_i128(i128), serialize_u8(u8), serialize_u16(u16),
        serialize_u32(u32), serialize_u64(u64), serialize_u128(u128));

    fn serialize_char(self, value: char) -> Result<(), Unsupported> {
        self.text(value.encode_utf8(&mut [0; 4]))
    }
    fn serialize_bool(self, value: bool) -> Result<(), Unsupported> {
        self.text(if value { "true" } else { "false" })
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    decline!("a floating-point map key": serialize_f32(f32) -> (), serialize_f64(f64) -> ());
    decline!("a map key that is not a string":
        serialize_bytes(&[u8]) -> (),
        serialize_none() -> (),
        serialize_unit() -> (),
        serialize_unit_struct(&'static str) -> (),
        serialize_seq(Option<usize>) -> Self::SerializeSeq,
        serialize_tuple(usize) -> Self::SerializeTuple,
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct,
        serialize_tuple_variant(&'static str, u32, &'static str, usize)
            -> Self::SerializeTupleVariant,
        serialize_map(Option<usize>) -> Self::SerializeMap,
        serialize_struct(&'static str, usize) -> Self::SerializeStruct,
        serialize_struct_variant(&'static str, u32, &'static str, usize)
            -> Self::SerializeStructVariant,
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Unsupported> {
        unsupported("a map key that is not a string")
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        unsupported("a map key that is not a string")
    }
}

#[cfg(test)]
mod tests {
    use super::{members_of, Members};
    use serde::Serialize;
    use serde_json::json;
    use std::collections::{BTreeMap, HashMap};

    /// The object `members` describe, written out.
    fn object_text(members: &Members) -> String {
        let mut out = String::from("{");
        for (index, (name, value)) in members.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(name).expect("a name"));
            out.push(':');
            out.push_str(std::str::from_utf8(value).expect("UTF-8"));
        }
        out.push('}');
        out
    }

    /// The fast way and the `Value` way give the same members, byte for byte.
    fn assert_same<T: Serialize>(value: &T) -> String {
        let direct = members_of(value).expect("the fast way takes it");
        let tree =
            Members::of_value(&serde_json::to_value(value).expect("a value")).expect("an object");
        let text = object_text(&direct);
        assert_eq!(text, object_text(&tree));
        text
    }

    #[test]
    fn objects_are_sorted_at_every_depth_as_the_value_way_sorts_them() {
        let text = assert_same(&json!({
            "b": 1, "a": {"z": [3, {"y": 1, "x": 2}], "c": null}, "é": "x", "Z": true, "aa": []
        }));
        assert_eq!(
            text,
            r#"{"Z":true,"a":{"c":null,"z":[3,{"x":2,"y":1}]},"aa":[],"b":1,"é":"x"}"#
        );
    }

    #[test]
    fn numbers_strings_and_escapes_match_the_value_way() {
        let text = assert_same(&json!({
            "ints": [0, -1, 42, u64::MAX, i64::MIN, 9_007_199_254_740_993_u64],
            "floats": [0.7, 1.0, -0.0, -2.5, 1e-7, 1e300, 123456789.125, f64::MIN_POSITIVE],
            "text": "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} é 😀 </script>",
        }));
        assert!(
            text.contains(r#""floats":[0.7,1,0,-2.5,0.0000001,"#),
            "{text}"
        );
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(u8),
        Tuple(u8, &'static str),
        Struct { b: u8, a: u8 },
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Wrapped(Vec<u8>);

    #[derive(Serialize)]
    struct Everything {
        z_last: u8,
        flag: bool,
        nothing: Option<u8>,
        something: Option<&'static str>,
        unit: (),
        unit_struct: Unit,
        wrapped: Wrapped,
        tuple: (u8, i16, f32),
        shapes: Vec<Shape>,
        character: char,
        small: i8,
        wide: i128,
        bytes: serde_bytes_like::Bytes,
        int_keys: BTreeMap<u32, &'static str>,
        char_keys: BTreeMap<char, u8>,
        bool_keys: BTreeMap<bool, u8>,
        hashed: HashMap<String, f64>,
        non_finite: Vec<f64>,
        single: f32,
    }

    /// `serialize_bytes` without a dependency: a byte string as serde sees one.
    mod serde_bytes_like {
        pub(super) struct Bytes(pub(super) &'static [u8]);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
    }

    #[test]
    fn every_serde_shape_matches_the_value_way() {
        let everything = Everything {
            z_last: 1,
            flag: false,
            nothing: None,
            something: Some("yes"),
            unit: (),
            unit_struct: Unit,
            wrapped: Wrapped(vec![1, 2]),
            tuple: (1, -2, 0.1),
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(7),
                Shape::Tuple(1, "two"),
                Shape::Struct { b: 2, a: 1 },
            ],
            character: 'ß',
            small: -8,
            wide: -12,
            bytes: serde_bytes_like::Bytes(b"hi"),
            int_keys: BTreeMap::from([(10, "ten"), (9, "nine"), (100, "hundred")]),
            char_keys: BTreeMap::from([('b', 2), ('a', 1)]),
            bool_keys: BTreeMap::from([(true, 1), (false, 0)]),
            hashed: (0..20)
                .map(|n| (format!("k{n}"), f64::from(n) / 4.0))
                .collect(),
            non_finite: vec![f64::NAN, f64::INFINITY, 1.5],
            single: 0.1,
        };
        let text = assert_same(&everything);
        assert!(
            text.contains(r#""int_keys":{"10":"ten","100":"hundred","9":"nine"}"#),
            "{text}"
        );
        assert!(text.contains(r#""non_finite":[null,null,1.5]"#), "{text}");
    }

    #[derive(Serialize)]
    struct Flattened {
        model: &'static str,
        temperature: f64,
        #[serde(flatten)]
        extra: BTreeMap<String, serde_json::Value>,
    }

    #[test]
    fn a_name_given_twice_keeps_its_last_value_as_a_json_map_does() {
        let request = Flattened {
            model: "typed",
            temperature: 0.5,
            extra: BTreeMap::from([
                ("model".to_owned(), json!("extra")),
                ("seed".to_owned(), json!(1)),
            ]),
        };
        let text = assert_same(&request);
        assert_eq!(text, r#"{"model":"extra","seed":1,"temperature":0.5}"#);
    }

    /// A map with one floating-point key (serde_json writes it as text; the fast way declines).
    struct FloatKeyed;

    impl Serialize for FloatKeyed {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(&1.5_f64, "one and a half")?;
            map.end()
        }
    }

    #[test]
    fn what_the_fast_way_does_not_model_it_declines() {
        assert!(members_of(&BTreeMap::from([("inner", FloatKeyed)])).is_err());
        #[derive(Serialize)]
        struct Wide {
            n: u128,
        }
        assert!(members_of(&Wide { n: u128::MAX }).is_err());
        assert_eq!(assert_same(&Wide { n: 5 }), r#"{"n":5}"#);
        let raw = serde_json::value::RawValue::from_string("{\"b\":1,\"a\":2}".to_owned())
            .expect("raw JSON");
        assert!(members_of(&BTreeMap::from([("raw", raw)])).is_err());
        assert!(members_of(&[1, 2]).is_err());
        assert!(members_of("text").is_err());
    }

    #[test]
    fn requests_of_every_endpoint_take_the_fast_way() {
        use lbgpt_core::{ChatMessage, ChatRequest, CompletionRequest, EmbeddingRequest};
        let chat = ChatRequest::new("m", vec![ChatMessage::user("hi")])
            .temperature(0.2)
            .extra_field("custom", json!({"b": 1, "a": [1.0, {"y": null, "x": "z"}]}));
        assert_same(&chat);
        assert_same(&CompletionRequest::new(
            "m",
            vec!["a".to_owned(), "b".to_owned()],
        ));
        assert_same(&EmbeddingRequest::new("m", vec!["a".to_owned()]));
    }
}
