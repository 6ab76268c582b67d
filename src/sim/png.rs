//! A minimal PNG encoder for the simulator's avatars and attachment: 8-bit RGB, no filtering,
//! the image data in zlib "stored" (uncompressed) deflate blocks. Every browser and image
//! library decodes it.

/// Encodes a `width` x `height` RGB image whose pixels `pixel(x, y)` gives.
pub fn encode_rgb(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut raw = Vec::with_capacity((height as usize) * (1 + 3 * width as usize));
    for y in 0..height {
        raw.push(0); // filter type: none
        for x in 0..width {
            raw.extend_from_slice(&pixel(x, y));
        }
    }
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // depth 8, RGB, deflate, no filter, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of stored deflate blocks (at most 65535 bytes each).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let length = u16::try_from(block.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&(!length).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the chunks, checking every CRC; returns (type, data) pairs.
    fn chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut rest = &png[8..];
        let mut found = Vec::new();
        while !rest.is_empty() {
            let length = u32::from_be_bytes(rest[..4].try_into().expect("length")) as usize;
            let body = &rest[4..8 + length];
            let crc = u32::from_be_bytes(rest[8 + length..12 + length].try_into().expect("crc"));
            assert_eq!(crc32(body), crc);
            found.push((body[..4].try_into().expect("type"), body[4..].to_vec()));
            rest = &rest[12 + length..];
        }
        found
    }

    /// Inflates a zlib stream of stored blocks.
    fn inflate_stored(zlib: &[u8]) -> Vec<u8> {
        assert_eq!((u16::from(zlib[0]) << 8 | u16::from(zlib[1])) % 31, 0);
        let mut at = 2;
        let mut out = Vec::new();
        loop {
            let last = zlib[at] & 1 == 1;
            assert_eq!(zlib[at] & 0b110, 0, "stored block");
            let length = usize::from(u16::from_le_bytes([zlib[at + 1], zlib[at + 2]]));
            let check = u16::from_le_bytes([zlib[at + 3], zlib[at + 4]]);
            assert_eq!(check, !(length as u16));
            out.extend_from_slice(&zlib[at + 5..at + 5 + length]);
            at += 5 + length;
            if last {
                break;
            }
        }
        assert_eq!(&zlib[at..], adler32(&out).to_be_bytes());
        out
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn encodes_a_valid_png_even_across_several_blocks() {
        for (width, height) in [(1, 1), (16, 16), (200, 200)] {
            let png = encode_rgb(width, height, |x, y| [x as u8, y as u8, 7]);
            let chunks = chunks(&png);
            let kinds: Vec<&[u8; 4]> = chunks.iter().map(|(kind, _)| kind).collect();
            assert_eq!(kinds, [b"IHDR", b"IDAT", b"IEND"]);
            assert_eq!(&chunks[0].1[..4], width.to_be_bytes());
            assert_eq!(&chunks[0].1[4..8], height.to_be_bytes());
            let raw = inflate_stored(&chunks[1].1);
            assert_eq!(raw.len(), (height * (1 + 3 * width)) as usize);
            let last_row = &raw[raw.len() - (1 + 3 * width as usize)..];
            assert_eq!(last_row[0], 0);
            assert_eq!(&last_row[1..4], [0, (height - 1) as u8, 7]);
        }
    }
}
