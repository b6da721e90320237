//! Serializers and deserializers: Java's `org.apache.kafka.common.serialization`.
//!
//! A [`Serializer`] turns a key or a value into the bytes of a record; a [`Deserializer`]
//! turns them back. The built-in ones are unit structs that implement both traits, and write
//! exactly the bytes of the Java class of the same name, so records interoperate with Java
//! producers and consumers:
//!
//! | Type                  | Rust types                 | Bytes, as Java writes them        |
//! |-----------------------|----------------------------|-----------------------------------|
//! | [`BytesSerializer`]   | `Bytes`, `Vec<u8>`, `[u8]` | unchanged                         |
//! | [`StringSerializer`]  | `String`, `str`            | UTF-8                             |
//! | [`ShortSerializer`]   | `i16`                      | 2 bytes, big-endian               |
//! | [`IntegerSerializer`] | `i32`                      | 4 bytes, big-endian               |
//! | [`LongSerializer`]    | `i64`                      | 8 bytes, big-endian               |
//! | [`FloatSerializer`]   | `f32`                      | IEEE 754 bits, big-endian         |
//! | [`DoubleSerializer`]  | `f64`                      | IEEE 754 bits, big-endian         |
//! | [`BooleanSerializer`] | `bool`                     | 1 byte, `0x01` (true) or `0x00`   |
//!
//! `BytesSerializer` stands for Java's `BytesSerializer`, `ByteArraySerializer` and
//! `ByteBufferSerializer`, which all write the bytes unchanged.
//!
//! With the `json` feature, `JsonSerializer<T>` and `JsonDeserializer<T>` convert any serde
//! type to and from JSON.
//!
//! # Null
//!
//! Java serializers map a `null` key or value to `null` bytes. Here absence is an `Option` on
//! the record: the producer serializes only a key or value that is present, and a missing one
//! stays missing (no key; a tombstone). Likewise a consumer deserializes only present bytes.
//! So these traits never see a null.
//!
//! # Differences from Java
//!
//! - [`StringSerializer`] always uses UTF-8 (Java's default; Java's `serializer.encoding`
//!   options are not supported), and its deserializer rejects invalid UTF-8 with
//!   [`Error::Serialization`] where Java substitutes U+FFFD.
//! - There is no UUID serializer (Java's writes `UUID.toString()` as a string), and no
//!   `VoidSerializer` (its only value is null).
//!
//! # Examples
//!
//! ```
//! use kafka_client::serializer::{Deserializer, IntegerSerializer, Serializer};
//!
//! let mut headers = Vec::new();
//! let bytes = IntegerSerializer.serialize("t", &mut headers, &258).unwrap();
//! assert_eq!(&bytes[..], [0, 0, 1, 2]);
//! let back: i32 = IntegerSerializer.deserialize("t", &headers, &bytes).unwrap();
//! assert_eq!(back, 258);
//! ```

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Error;
use crate::record::Header;

/// Converts a `T` into the bytes of a record's key or value: Java's `Serializer<T>`.
///
/// `topic` is the record's topic. `headers` are the record's headers; a serializer may add to
/// them (for example a schema id or a content type), as Java's
/// `serialize(topic, headers, data)` may. Return [`Error::Serialization`] when `data` cannot be
/// serialized; the producer then fails the send without sending anything.
///
/// Serializers are shared between sending tasks and threads, hence `Send + Sync`.
pub trait Serializer<T: ?Sized>: Send + Sync {
    /// The bytes of `data`.
    fn serialize(&self, topic: &str, headers: &mut Vec<Header>, data: &T) -> Result<Bytes, Error>;

    /// Like [`serialize`](Self::serialize) but takes `data` by value, so a serializer whose
    /// output can reuse the input's memory (bytes, strings) avoids a copy. The producer calls
    /// this one; the default delegates to `serialize`.
    fn serialize_owned(
        &self,
        topic: &str,
        headers: &mut Vec<Header>,
        data: T,
    ) -> Result<Bytes, Error>
    where
        T: Sized,
    {
        self.serialize(topic, headers, &data)
    }
}

/// Converts the bytes of a record's key or value into a `T`: Java's `Deserializer<T>`.
///
/// `topic` and `headers` are the record's. Return [`Error::Serialization`] when the bytes are
/// not a valid `T`.
pub trait Deserializer<T>: Send + Sync {
    /// The value encoded by `data`.
    fn deserialize(&self, topic: &str, headers: &[Header], data: &[u8]) -> Result<T, Error>;

    /// Like [`deserialize`](Self::deserialize) but takes the bytes as an owned [`Bytes`] (a
    /// slice of the fetched data), so a deserializer whose output can share that memory
    /// avoids a copy. The consumer calls this one; the default delegates to `deserialize`.
    fn deserialize_owned(&self, topic: &str, headers: &[Header], data: Bytes) -> Result<T, Error> {
        self.deserialize(topic, headers, &data)
    }
}

impl<T: ?Sized, S: Serializer<T> + ?Sized> Serializer<T> for Arc<S> {
    fn serialize(&self, topic: &str, headers: &mut Vec<Header>, data: &T) -> Result<Bytes, Error> {
        (**self).serialize(topic, headers, data)
    }

    fn serialize_owned(
        &self,
        topic: &str,
        headers: &mut Vec<Header>,
        data: T,
    ) -> Result<Bytes, Error>
    where
        T: Sized,
    {
        (**self).serialize_owned(topic, headers, data)
    }
}

impl<T: ?Sized, S: Serializer<T> + ?Sized> Serializer<T> for Box<S> {
    fn serialize(&self, topic: &str, headers: &mut Vec<Header>, data: &T) -> Result<Bytes, Error> {
        (**self).serialize(topic, headers, data)
    }

    fn serialize_owned(
        &self,
        topic: &str,
        headers: &mut Vec<Header>,
        data: T,
    ) -> Result<Bytes, Error>
    where
        T: Sized,
    {
        (**self).serialize_owned(topic, headers, data)
    }
}

impl<T, D: Deserializer<T> + ?Sized> Deserializer<T> for Arc<D> {
    fn deserialize(&self, topic: &str, headers: &[Header], data: &[u8]) -> Result<T, Error> {
        (**self).deserialize(topic, headers, data)
    }

    fn deserialize_owned(&self, topic: &str, headers: &[Header], data: Bytes) -> Result<T, Error> {
        (**self).deserialize_owned(topic, headers, data)
    }
}

impl<T, D: Deserializer<T> + ?Sized> Deserializer<T> for Box<D> {
    fn deserialize(&self, topic: &str, headers: &[Header], data: &[u8]) -> Result<T, Error> {
        (**self).deserialize(topic, headers, data)
    }

    fn deserialize_owned(&self, topic: &str, headers: &[Header], data: Bytes) -> Result<T, Error> {
        (**self).deserialize_owned(topic, headers, data)
    }
}

/// `data` as an array of exactly `N` bytes, or Java's error for a wrong size:
/// `Size of data received by {deserializer} is not {N}`.
fn exactly<const N: usize>(data: &[u8], deserializer: &str) -> Result<[u8; N], Error> {
    data.try_into().map_err(|_| {
        Error::Serialization(format!(
            "Size of data received by {deserializer} is not {N}"
        ))
    })
}

/// Raw bytes, unchanged: Java's `BytesSerializer` / `ByteArraySerializer` /
/// `ByteBufferSerializer` and their deserializers.
///
/// Serializes `Bytes` (without copying), `Vec<u8>` and `[u8]`; deserializes into `Bytes` and
/// `Vec<u8>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BytesSerializer;

impl Serializer<Bytes> for BytesSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &Bytes) -> Result<Bytes, Error> {
        Ok(data.clone())
    }

    fn serialize_owned(&self, _: &str, _: &mut Vec<Header>, data: Bytes) -> Result<Bytes, Error> {
        Ok(data)
    }
}

impl Serializer<Vec<u8>> for BytesSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &Vec<u8>) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(data))
    }

    fn serialize_owned(&self, _: &str, _: &mut Vec<Header>, data: Vec<u8>) -> Result<Bytes, Error> {
        Ok(Bytes::from(data))
    }
}

impl Serializer<[u8]> for BytesSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &[u8]) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(data))
    }
}

/// The consumer gets a `Bytes` that shares the fetched response's memory (no copy): a record
/// kept alive keeps that response buffer alive too. Copy (`Bytes::copy_from_slice`) the few
/// values kept for long.
impl Deserializer<Bytes> for BytesSerializer {
    fn deserialize(&self, _: &str, _: &[Header], data: &[u8]) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(data))
    }

    fn deserialize_owned(&self, _: &str, _: &[Header], data: Bytes) -> Result<Bytes, Error> {
        Ok(data)
    }
}

impl Deserializer<Vec<u8>> for BytesSerializer {
    fn deserialize(&self, _: &str, _: &[Header], data: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(data.to_vec())
    }
}

/// UTF-8 text: Java's `StringSerializer` / `StringDeserializer` with their default encoding.
///
/// Serializes `String` and `str`; deserializes into `String`, rejecting invalid UTF-8 with
/// [`Error::Serialization`] (Java replaces it with U+FFFD instead).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StringSerializer;

impl Serializer<str> for StringSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &str) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(data.as_bytes()))
    }
}

impl Serializer<String> for StringSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &String) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(data.as_bytes()))
    }

    fn serialize_owned(&self, _: &str, _: &mut Vec<Header>, data: String) -> Result<Bytes, Error> {
        Ok(Bytes::from(data.into_bytes()))
    }
}

impl Deserializer<String> for StringSerializer {
    fn deserialize(&self, _: &str, _: &[Header], data: &[u8]) -> Result<String, Error> {
        std::str::from_utf8(data)
            .map(str::to_owned)
            .map_err(|e| Error::Serialization(format!("invalid UTF-8 in string data: {e}")))
    }
}

/// `i16` as 2 big-endian bytes: Java's `ShortSerializer` / `ShortDeserializer`.
///
/// Deserializing anything but 2 bytes fails with Java's message, "Size of data received by
/// ShortDeserializer is not 2".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShortSerializer;

impl Serializer<i16> for ShortSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &i16) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(&data.to_be_bytes()))
    }
}

impl Deserializer<i16> for ShortSerializer {
    fn deserialize(&self, _: &str, _: &[Header], data: &[u8]) -> Result<i16, Error> {
        exactly(data, "ShortDeserializer").map(i16::from_be_bytes)
    }
}

/// `i32` as 4 big-endian bytes: Java's `IntegerSerializer` / `IntegerDeserializer`.
///
/// Deserializing anything but 4 bytes fails with Java's message, "Size of data received by
/// IntegerDeserializer is not 4".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntegerSerializer;

impl Serializer<i32> for IntegerSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &i32) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(&data.to_be_bytes()))
    }
}

impl Deserializer<i32> for IntegerSerializer {
    fn deserialize(&self, _: &str, _: &[Header], data: &[u8]) -> Result<i32, Error> {
        exactly(data, "IntegerDeserializer").map(i32::from_be_bytes)
    }
}

/// `i64` as 8 big-endian bytes: Java's `LongSerializer` / `LongDeserializer`.
///
/// Deserializing anything but 8 bytes fails with Java's message, "Size of data received by
/// LongDeserializer is not 8".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LongSerializer;

impl Serializer<i64> for LongSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &i64) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(&data.to_be_bytes()))
    }
}

impl Deserializer<i64> for LongSerializer {
    fn deserialize(&self, _: &str, _: &[Header], data: &[u8]) -> Result<i64, Error> {
        exactly(data, "LongDeserializer").map(i64::from_be_bytes)
    }
}

/// `f32` as its 4 IEEE 754 bytes, big-endian: Java's `FloatSerializer` / `FloatDeserializer`.
///
/// Java writes `Float.floatToRawIntBits`, so NaN payloads are kept, as here. Deserializing
/// anything but 4 bytes fails with Java's message, "Size of data received by Deserializer is
/// not 4" (sic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloatSerializer;

impl Serializer<f32> for FloatSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &f32) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(&data.to_bits().to_be_bytes()))
    }
}

impl Deserializer<f32> for FloatSerializer {
    fn deserialize(&self, _: &str, _: &[Header], data: &[u8]) -> Result<f32, Error> {
        exactly(data, "Deserializer").map(|b| f32::from_bits(u32::from_be_bytes(b)))
    }
}

/// `f64` as its 8 IEEE 754 bytes, big-endian: Java's `DoubleSerializer` / `DoubleDeserializer`.
///
/// Java writes `Double.doubleToLongBits`, which turns every NaN into the canonical
/// `0x7ff8000000000000`; so does this serializer. Deserializing anything but 8 bytes fails with
/// Java's message, "Size of data received by Deserializer is not 8" (sic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoubleSerializer;

/// Java's canonical NaN (`Double.doubleToLongBits(Double.NaN)`).
const JAVA_CANONICAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0000;

impl Serializer<f64> for DoubleSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &f64) -> Result<Bytes, Error> {
        let bits = if data.is_nan() {
            JAVA_CANONICAL_NAN_BITS
        } else {
            data.to_bits()
        };
        Ok(Bytes::copy_from_slice(&bits.to_be_bytes()))
    }
}

impl Deserializer<f64> for DoubleSerializer {
    fn deserialize(&self, _: &str, _: &[Header], data: &[u8]) -> Result<f64, Error> {
        exactly(data, "Deserializer").map(|b| f64::from_bits(u64::from_be_bytes(b)))
    }
}

/// `bool` as one byte, `0x01` for true and `0x00` for false: Java's `BooleanSerializer` /
/// `BooleanDeserializer` (Kafka 3.5+).
///
/// Deserializing fails, with Java's messages, on anything but 1 byte ("Size of data received by
/// BooleanDeserializer is not 1") and on another byte ("Unexpected byte received by
/// BooleanDeserializer: -1", the byte printed as a signed Java `byte`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BooleanSerializer;

impl Serializer<bool> for BooleanSerializer {
    fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &bool) -> Result<Bytes, Error> {
        Ok(Bytes::from_static(if *data { &[0x01] } else { &[0x00] }))
    }
}

impl Deserializer<bool> for BooleanSerializer {
    fn deserialize(&self, _: &str, _: &[Header], data: &[u8]) -> Result<bool, Error> {
        match exactly::<1>(data, "BooleanDeserializer")? {
            [0x01] => Ok(true),
            [0x00] => Ok(false),
            [other] => Err(Error::Serialization(format!(
                "Unexpected byte received by BooleanDeserializer: {}",
                other as i8
            ))),
        }
    }
}

#[cfg(feature = "json")]
pub use json::{JsonDeserializer, JsonSerializer};

#[cfg(feature = "json")]
mod json {
    use std::fmt;
    use std::marker::PhantomData;

    use bytes::Bytes;

    use super::{Deserializer, Serializer};
    use crate::error::Error;
    use crate::record::Header;

    /// Any [`serde::Serialize`] type as compact JSON (`serde_json::to_vec`), UTF-8 encoded
    /// (feature `json`).
    ///
    /// ```
    /// use kafka_client::serializer::{JsonSerializer, Serializer};
    ///
    /// #[derive(serde::Serialize)]
    /// struct Order { id: u32, item: String }
    ///
    /// let json = JsonSerializer::<Order>::new()
    ///     .serialize("orders", &mut Vec::new(), &Order { id: 7, item: "tea".into() })
    ///     .unwrap();
    /// assert_eq!(&json[..], br#"{"id":7,"item":"tea"}"#);
    /// ```
    pub struct JsonSerializer<T: ?Sized>(PhantomData<fn(&T)>);

    impl<T: ?Sized> JsonSerializer<T> {
        /// A JSON serializer of `T`.
        pub const fn new() -> Self {
            JsonSerializer(PhantomData)
        }
    }

    impl<T: ?Sized> fmt::Debug for JsonSerializer<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JsonSerializer")
        }
    }

    impl<T: ?Sized> Clone for JsonSerializer<T> {
        fn clone(&self) -> Self {
            *self
        }
    }

    impl<T: ?Sized> Copy for JsonSerializer<T> {}

    impl<T: ?Sized> Default for JsonSerializer<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<T: serde::Serialize + ?Sized> Serializer<T> for JsonSerializer<T> {
        fn serialize(&self, _: &str, _: &mut Vec<Header>, data: &T) -> Result<Bytes, Error> {
            serde_json::to_vec(data)
                .map(Bytes::from)
                .map_err(|e| Error::Serialization(format!("JSON serialization failed: {e}")))
        }
    }

    /// Any [`serde::de::DeserializeOwned`] type from JSON (`serde_json::from_slice`)
    /// (feature `json`). Malformed JSON, or JSON of another shape, fails with
    /// [`Error::Serialization`].
    ///
    /// ```
    /// use kafka_client::serializer::{Deserializer, JsonDeserializer};
    ///
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct Order { id: u32 }
    ///
    /// let order: Order = JsonDeserializer::new()
    ///     .deserialize("orders", &[], br#"{"id": 7}"#)
    ///     .unwrap();
    /// assert_eq!(order, Order { id: 7 });
    /// ```
    pub struct JsonDeserializer<T>(PhantomData<fn() -> T>);

    impl<T> JsonDeserializer<T> {
        /// A JSON deserializer of `T`.
        pub const fn new() -> Self {
            JsonDeserializer(PhantomData)
        }
    }

    impl<T> fmt::Debug for JsonDeserializer<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JsonDeserializer")
        }
    }

    impl<T> Clone for JsonDeserializer<T> {
        fn clone(&self) -> Self {
            *self
        }
    }

    impl<T> Copy for JsonDeserializer<T> {}

    impl<T> Default for JsonDeserializer<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<T: serde::de::DeserializeOwned> Deserializer<T> for JsonDeserializer<T> {
        fn deserialize(&self, _: &str, _: &[Header], data: &[u8]) -> Result<T, Error> {
            serde_json::from_slice(data)
                .map_err(|e| Error::Serialization(format!("JSON deserialization failed: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ser<T: ?Sized>(s: &impl Serializer<T>, data: &T) -> Vec<u8> {
        let mut headers = Vec::new();
        let bytes = s.serialize("topic", &mut headers, data).unwrap();
        assert!(headers.is_empty(), "built-ins add no headers");
        bytes.to_vec()
    }

    fn de<T>(d: &impl Deserializer<T>, data: &[u8]) -> Result<T, Error> {
        d.deserialize("topic", &[], data)
    }

    fn message(e: Error) -> String {
        match e {
            Error::Serialization(m) => m,
            other => panic!("not a serialization error: {other:?}"),
        }
    }

    #[test]
    fn bytes_pass_through() {
        let data = Bytes::from_static(&[0, 0xff, 7]);
        assert_eq!(ser(&BytesSerializer, &data), [0, 0xff, 7]);
        assert_eq!(ser(&BytesSerializer, &vec![1u8, 2]), [1, 2]);
        assert_eq!(ser::<[u8]>(&BytesSerializer, &[3u8, 4][..]), [3, 4]);
        assert_eq!(ser::<[u8]>(&BytesSerializer, &[][..]), [0u8; 0]);
        let b: Bytes = de(&BytesSerializer, &[9, 8]).unwrap();
        assert_eq!(&b[..], [9, 8]);
        let v: Vec<u8> = de(&BytesSerializer, &[]).unwrap();
        assert!(v.is_empty());
    }

    #[test]
    fn bytes_serializer_does_not_copy_bytes() {
        let data = Bytes::from(vec![1u8; 64]);
        let out = BytesSerializer
            .serialize("t", &mut Vec::new(), &data)
            .unwrap();
        assert_eq!(out.as_ptr(), data.as_ptr());
    }

    #[test]
    fn bytes_deserializer_shares_owned_bytes() {
        let data = Bytes::from(vec![5u8; 64]);
        let slice = data.slice(8..16);
        let out: Bytes = BytesSerializer
            .deserialize_owned("t", &[], slice.clone())
            .unwrap();
        assert_eq!(out.as_ptr(), slice.as_ptr());
        // Through Arc<dyn ..> (how the consumer holds it) too.
        let d: Arc<dyn Deserializer<Bytes>> = Arc::new(BytesSerializer);
        let out = d.deserialize_owned("t", &[], slice.clone()).unwrap();
        assert_eq!(out.as_ptr(), slice.as_ptr());
        // Other deserializers go through `deserialize`.
        let v: Vec<u8> = BytesSerializer.deserialize_owned("t", &[], slice).unwrap();
        assert_eq!(v, [5u8; 8]);
    }

    #[test]
    fn strings_are_utf8() {
        assert_eq!(ser(&StringSerializer, "héllo"), b"h\xc3\xa9llo");
        assert_eq!(
            ser(&StringSerializer, &String::from("€")),
            [0xe2, 0x82, 0xac]
        );
        assert_eq!(ser(&StringSerializer, ""), b"");
        let s: String = de(&StringSerializer, b"h\xc3\xa9llo").unwrap();
        assert_eq!(s, "héllo");
        let e = de::<String>(&StringSerializer, &[0x61, 0xff]).unwrap_err();
        assert!(message(e).contains("invalid UTF-8"));
        // A truncated multi-byte sequence is invalid too.
        assert!(de::<String>(&StringSerializer, &[0xe2, 0x82]).is_err());
    }

    #[test]
    fn short_is_two_bytes_big_endian() {
        assert_eq!(ser(&ShortSerializer, &0x0102), [0x01, 0x02]);
        assert_eq!(ser(&ShortSerializer, &-1), [0xff, 0xff]);
        assert_eq!(ser(&ShortSerializer, &i16::MIN), [0x80, 0x00]);
        assert_eq!(de(&ShortSerializer, &[0x80, 0x01]).unwrap(), -32767i16);
        assert_eq!(
            message(de::<i16>(&ShortSerializer, &[1, 2, 3]).unwrap_err()),
            "Size of data received by ShortDeserializer is not 2"
        );
    }

    #[test]
    fn integer_is_four_bytes_big_endian() {
        assert_eq!(ser(&IntegerSerializer, &0x0102_0304), [1, 2, 3, 4]);
        assert_eq!(ser(&IntegerSerializer, &-2), [0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(ser(&IntegerSerializer, &i32::MIN), [0x80, 0, 0, 0]);
        assert_eq!(de(&IntegerSerializer, &[0, 0, 1, 0]).unwrap(), 256i32);
        for bad in [&[][..], &[1, 2, 3], &[1, 2, 3, 4, 5]] {
            let e = de::<i32>(&IntegerSerializer, bad).unwrap_err();
            assert_eq!(
                message(e.clone()),
                "Size of data received by IntegerDeserializer is not 4"
            );
            assert_eq!(
                e.to_string(),
                "serialization failed: Size of data received by IntegerDeserializer is not 4"
            );
        }
    }

    #[test]
    fn long_is_eight_bytes_big_endian() {
        assert_eq!(
            ser(&LongSerializer, &0x0102_0304_0506_0708),
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(ser(&LongSerializer, &-1), [0xff; 8]);
        assert_eq!(
            de(&LongSerializer, &[0x80, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            i64::MIN
        );
        assert_eq!(
            message(de::<i64>(&LongSerializer, &[0; 4]).unwrap_err()),
            "Size of data received by LongDeserializer is not 8"
        );
    }

    #[test]
    fn float_is_raw_ieee_bits() {
        assert_eq!(ser(&FloatSerializer, &1.0f32), [0x3f, 0x80, 0x00, 0x00]);
        assert_eq!(ser(&FloatSerializer, &-2.5f32), [0xc0, 0x20, 0x00, 0x00]);
        assert_eq!(ser(&FloatSerializer, &-0.0f32), [0x80, 0, 0, 0]);
        // floatToRawIntBits keeps a NaN's payload.
        let nan = f32::from_bits(0x7fc0_0001);
        assert_eq!(ser(&FloatSerializer, &nan), [0x7f, 0xc0, 0x00, 0x01]);
        assert_eq!(
            de::<f32>(&FloatSerializer, &[0x7f, 0xc0, 0x00, 0x01])
                .unwrap()
                .to_bits(),
            0x7fc0_0001
        );
        assert_eq!(
            de(&FloatSerializer, &[0x3f, 0x80, 0x00, 0x00]).unwrap(),
            1.0f32
        );
        assert_eq!(
            message(de::<f32>(&FloatSerializer, &[0; 8]).unwrap_err()),
            "Size of data received by Deserializer is not 4"
        );
    }

    #[test]
    fn double_is_ieee_bits_with_java_canonical_nan() {
        assert_eq!(
            ser(&DoubleSerializer, &1.0f64),
            [0x3f, 0xf0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            ser(&DoubleSerializer, &-0.1f64),
            [0xbf, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]
        );
        assert_eq!(
            ser(&DoubleSerializer, &f64::INFINITY),
            [0x7f, 0xf0, 0, 0, 0, 0, 0, 0]
        );
        // doubleToLongBits collapses every NaN to 0x7ff8000000000000.
        for nan in [
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::from_bits(0xfff8_0000_0000_1234),
        ] {
            assert_eq!(
                ser(&DoubleSerializer, &nan),
                [0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
                "{:#x}",
                nan.to_bits()
            );
        }
        assert_eq!(
            de(
                &DoubleSerializer,
                &[0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18]
            )
            .unwrap(),
            std::f64::consts::PI
        );
        assert_eq!(
            message(de::<f64>(&DoubleSerializer, &[0; 4]).unwrap_err()),
            "Size of data received by Deserializer is not 8"
        );
    }

    #[test]
    fn boolean_is_one_byte() {
        assert_eq!(ser(&BooleanSerializer, &true), [1]);
        assert_eq!(ser(&BooleanSerializer, &false), [0]);
        assert!(de(&BooleanSerializer, &[1]).unwrap());
        assert!(!de(&BooleanSerializer, &[0]).unwrap());
        assert_eq!(
            message(de::<bool>(&BooleanSerializer, &[1, 0]).unwrap_err()),
            "Size of data received by BooleanDeserializer is not 1"
        );
        assert_eq!(
            message(de::<bool>(&BooleanSerializer, &[0xff]).unwrap_err()),
            "Unexpected byte received by BooleanDeserializer: -1"
        );
        assert_eq!(
            message(de::<bool>(&BooleanSerializer, &[2]).unwrap_err()),
            "Unexpected byte received by BooleanDeserializer: 2"
        );
    }

    #[test]
    fn round_trips() {
        for v in [0i16, 1, -1, i16::MIN, i16::MAX] {
            assert_eq!(de(&ShortSerializer, &ser(&ShortSerializer, &v)).unwrap(), v);
        }
        for v in [0i32, 1, -1, i32::MIN, i32::MAX] {
            assert_eq!(
                de(&IntegerSerializer, &ser(&IntegerSerializer, &v)).unwrap(),
                v
            );
        }
        for v in [0i64, 1, -1, i64::MIN, i64::MAX] {
            assert_eq!(de(&LongSerializer, &ser(&LongSerializer, &v)).unwrap(), v);
        }
        for v in [0.0f32, -0.0, 1.5, f32::MIN_POSITIVE, f32::INFINITY] {
            let back: f32 = de(&FloatSerializer, &ser(&FloatSerializer, &v)).unwrap();
            assert_eq!(back.to_bits(), v.to_bits());
        }
        for v in [0.0f64, -0.0, 1.5, f64::MIN_POSITIVE, f64::NEG_INFINITY] {
            let back: f64 = de(&DoubleSerializer, &ser(&DoubleSerializer, &v)).unwrap();
            assert_eq!(back.to_bits(), v.to_bits());
        }
    }

    #[test]
    fn serializers_work_as_trait_objects() {
        let s: Box<dyn Serializer<str>> = Box::new(StringSerializer);
        assert_eq!(ser(&s, "x"), b"x");
        let s: Arc<dyn Serializer<i32>> = Arc::new(IntegerSerializer);
        assert_eq!(ser(&s, &1), [0, 0, 0, 1]);
        let d: Arc<dyn Deserializer<i64>> = Arc::new(LongSerializer);
        assert_eq!(de(&d, &[0, 0, 0, 0, 0, 0, 0, 2]).unwrap(), 2);
        let d: Box<dyn Deserializer<String>> = Box::new(StringSerializer);
        assert_eq!(de(&d, b"y").unwrap(), "y");
    }

    #[test]
    fn a_serializer_may_add_headers() {
        struct Tagged;
        impl Serializer<str> for Tagged {
            fn serialize(
                &self,
                topic: &str,
                headers: &mut Vec<Header>,
                data: &str,
            ) -> Result<Bytes, Error> {
                headers.push(Header::new("content-type", "text/plain"));
                StringSerializer.serialize(topic, headers, data)
            }
        }
        let mut headers = Vec::new();
        let bytes = Tagged.serialize("t", &mut headers, "hi").unwrap();
        assert_eq!(&bytes[..], b"hi");
        assert_eq!(headers, [Header::new("content-type", "text/plain")]);
    }

    #[cfg(feature = "json")]
    mod json {
        use std::collections::BTreeMap;

        use super::*;

        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Order {
            id: u64,
            item: String,
            tags: Vec<String>,
            price: Option<f64>,
        }

        #[test]
        fn json_bytes_are_compact_utf8() {
            let order = Order {
                id: 7,
                item: "thé".into(),
                tags: vec!["a".into()],
                price: None,
            };
            let bytes = ser(&JsonSerializer::<Order>::new(), &order);
            assert_eq!(
                bytes,
                "{\"id\":7,\"item\":\"thé\",\"tags\":[\"a\"],\"price\":null}".as_bytes()
            );
            let back: Order = de(&JsonDeserializer::new(), &bytes).unwrap();
            assert_eq!(back, order);
        }

        #[test]
        fn json_of_unsized_and_map_types() {
            assert_eq!(ser(&JsonSerializer::<str>::new(), "q\""), br#""q\"""#);
            let map: BTreeMap<&str, i32> = [("b", 2), ("a", 1)].into();
            assert_eq!(ser(&JsonSerializer::default(), &map), br#"{"a":1,"b":2}"#);
        }

        #[test]
        fn malformed_json_is_a_serialization_error() {
            let e = de::<Order>(&JsonDeserializer::new(), b"{\"id\":").unwrap_err();
            assert!(message(e).starts_with("JSON deserialization failed"));
            let e = de::<Order>(&JsonDeserializer::new(), br#"{"id":"seven"}"#).unwrap_err();
            assert!(matches!(e, Error::Serialization(_)));
        }

        #[test]
        fn unserializable_values_are_errors() {
            // JSON object keys must be strings.
            let map: BTreeMap<(i32, i32), i32> = [((1, 2), 3)].into();
            let e = JsonSerializer::new()
                .serialize("t", &mut Vec::new(), &map)
                .unwrap_err();
            assert!(message(e).starts_with("JSON serialization failed"));
        }

        #[test]
        fn json_types_are_send_sync_copy_debug() {
            fn check<T: Send + Sync + Copy + std::fmt::Debug + Default>() {}
            // `Rc` is neither Send nor Sync; the markers must not inherit that.
            check::<JsonSerializer<std::rc::Rc<u8>>>();
            check::<JsonDeserializer<std::rc::Rc<u8>>>();
            assert_eq!(
                format!("{:?}", JsonSerializer::<Order>::new()),
                "JsonSerializer"
            );
        }
    }
}
