//! The "set of marks" image of the latest OpenHands client (`docs/spec/compat-latest.md` O3): the
//! screenshot with every marked element outlined and labelled with its bid, after
//! BrowserGym's `overlay_som` (`browsergym/utils/obs.py`).
//!
//! Owns only pixels: a pure function from a base64 PNG and the `extra_element_properties`
//! map to a base64 PNG; it never touches the browser. Boxes are in CSS pixels of the viewport,
//! which are screenshot pixels because every tab runs at device scale factor 1
//! ([`crate::session::VIEWPORT`]).
//!
//! Drawn as the reference does, element by element in map order: a black dashed outline
//! (2 px wide, 4 px dashes every 12 px) along the box, then a tag pasted at its top-left
//! corner — the bid in white on black with a 1 px white border. Elements whose box is smaller
//! than 20 px² are skipped. The label font is embedded-graphics' built-in 7×13 bitmap font
//! (the reference uses Pillow's default 12 px font); pixel-exactness is not a goal.

use std::io::Cursor;

use base64::Engine;
use embedded_graphics::mono_font::{ascii::FONT_7X13, MonoTextStyle};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::text::{Baseline, Text};
use serde_json::Value;

/// Why no overlay could be made.
#[derive(Debug, thiserror::Error)]
pub enum MarksError {
    #[error("screenshot is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("screenshot is not a PNG: {0}")]
    Decode(#[from] png::DecodingError),
    #[error("cannot encode the overlay: {0}")]
    Encode(#[from] png::EncodingError),
    #[error("screenshot has an unsupported pixel format {0:?}")]
    Format(png::ColorType),
    #[error("{len} bytes are not {width}×{height} RGB pixels")]
    Size { width: u32, height: u32, len: usize },
}

const BLACK: [u8; 3] = [0, 0, 0];
const WHITE: [u8; 3] = [255, 255, 255];
/// `overlay_som` defaults.
const LINE_WIDTH: i64 = 2;
const TAG_MARGIN: i64 = 2;
const DASH: f64 = 4.0;
const GAP: f64 = 8.0;
const MIN_AREA: f64 = 20.0;

/// Draws the marks of `props` (`{bid: {"bbox": [x, y, w, h] | null, "set_of_marks": bool,
/// ..}}`) on the PNG `png_base64` (no `data:` prefix); returns the result as base64 PNG (RGB,
/// no prefix). Entries without a truthy `set_of_marks` or a four-number `bbox` are skipped.
pub fn overlay(png_base64: &str, props: &Value) -> Result<String, MarksError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(png_base64.trim())?;
    let mut canvas = decode(&bytes)?;
    if let Some(map) = props.as_object() {
        for (bid, p) in map {
            if !truthy(&p["set_of_marks"]) {
                continue;
            }
            let Some([x, y, w, h]) = bbox(&p["bbox"]) else {
                continue;
            };
            if w * h < MIN_AREA {
                continue;
            }
            canvas.dashed_box(x, y, x + w, y + h);
            canvas.tag(bid, x, y);
        }
    }
    let png = canvas.encode()?;
    Ok(base64::engine::general_purpose::STANDARD.encode(png))
}

/// Encodes 8-bit RGB pixels (rows top to bottom) as a base64 PNG without prefix, the form of
/// the observation's `screenshot` (for screenshots that arrive as pixels, e.g. BrowserGym's).
pub fn encode_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Result<String, MarksError> {
    if width == 0 || height == 0 || rgb.len() != (width as usize) * (height as usize) * 3 {
        return Err(MarksError::Size {
            width,
            height,
            len: rgb.len(),
        });
    }
    let canvas = Canvas {
        width: i64::from(width),
        height: i64::from(height),
        rgb,
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(canvas.encode()?))
}

/// Python truthiness of a JSON value, as `if properties["set_of_marks"]` reads it.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn bbox(v: &Value) -> Option<[f64; 4]> {
    let a = v.as_array()?;
    if a.len() != 4 {
        return None;
    }
    let mut out = [0.0; 4];
    for (o, n) in out.iter_mut().zip(a) {
        *o = n.as_f64().filter(|f| f.is_finite())?;
    }
    Some(out)
}

/// An 8-bit RGB image.
struct Canvas {
    width: i64,
    height: i64,
    rgb: Vec<u8>,
}

fn decode(bytes: &[u8]) -> Result<Canvas, MarksError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let size = reader
        .output_buffer_size()
        .ok_or(png::DecodingError::LimitsExceeded)?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf)?;
    buf.truncate(info.buffer_size());
    let pixels = (info.width as usize) * (info.height as usize);
    // Like Pillow's convert("RGB"): alpha is dropped, grey is spread over the channels.
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => buf.chunks_exact(2).flat_map(|p| [p[0]; 3]).collect(),
        other => return Err(MarksError::Format(other)),
    };
    if rgb.len() != pixels * 3 {
        return Err(MarksError::Format(info.color_type));
    }
    Ok(Canvas {
        width: i64::from(info.width),
        height: i64::from(info.height),
        rgb,
    })
}

impl Canvas {
    fn encode(&self) -> Result<Vec<u8>, MarksError> {
        let mut out = Vec::with_capacity(self.rgb.len() / 4);
        {
            let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::Fast);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&self.rgb)?;
            writer.finish()?;
        }
        Ok(out)
    }

    fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            let i = ((y * self.width + x) * 3) as usize;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Fills the inclusive rectangle, clipped to the image.
    fn fill(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        let (xa, xb) = (x0.max(0), x1.min(self.width - 1));
        for y in y0.max(0)..=y1.min(self.height - 1) {
            for x in xa..=xb {
                self.put(x, y, c);
            }
        }
    }

    /// The four edges, each dashed from its own start as the reference walks them
    /// (top left→right, right top→bottom, bottom right→left, left bottom→top).
    fn dashed_box(&mut self, x0: f64, y0: f64, x1: f64, y1: f64) {
        self.dashed(x0, y0, x1, y0);
        self.dashed(x1, y0, x1, y1);
        self.dashed(x1, y1, x0, y1);
        self.dashed(x0, y1, x0, y0);
    }

    /// A dashed axis-aligned line `LINE_WIDTH` px wide, centred on it.
    fn dashed(&mut self, x0: f64, y0: f64, x1: f64, y1: f64) {
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len = dx.hypot(dy);
        if len == 0.0 {
            return;
        }
        let (ux, uy) = (dx / len, dy / len);
        let half = LINE_WIDTH / 2;
        let mut start = 0.0;
        while start < len {
            let end = (start + DASH).min(len);
            let (ax, ay) = (round(x0 + ux * start), round(y0 + uy * start));
            let (bx, by) = (round(x0 + ux * end), round(y0 + uy * end));
            let (xa, xb) = (ax.min(bx), ax.max(bx));
            let (ya, yb) = (ay.min(by), ay.max(by));
            if ya == yb {
                self.fill(xa, ya - half, xb, ya - half + LINE_WIDTH - 1, BLACK);
            } else {
                self.fill(xa - half, ya, xa - half + LINE_WIDTH - 1, yb, BLACK);
            }
            start += DASH + GAP;
        }
    }

    /// The bid label: its ink box plus `TAG_MARGIN + 1` px on each side, black with a white
    /// 1 px border and white text, its top-left at `(x, y - height / 2 + 4)`.
    fn tag(&mut self, bid: &str, x: f64, y: f64) {
        let mut ink = Ink::default();
        let style = MonoTextStyle::new(&FONT_7X13, BinaryColor::On);
        // Ink never fails.
        let _ = Text::with_baseline(bid, Point::zero(), style, Baseline::Top).draw(&mut ink);
        let Some((left, top, right, bottom)) = ink.bounds() else {
            return;
        };
        let pad = TAG_MARGIN + 1;
        let (w, h) = (right - left + 1 + 2 * pad, bottom - top + 1 + 2 * pad);
        let tx = round(x);
        let ty = round(y - h as f64 / 2.0 + 4.0);
        self.fill(tx, ty, tx + w - 1, ty + h - 1, WHITE);
        self.fill(tx + 1, ty + 1, tx + w - 2, ty + h - 2, BLACK);
        for p in &ink.points {
            self.put(tx + pad + p.0 - left, ty + pad + p.1 - top, WHITE);
        }
    }
}

fn round(v: f64) -> i64 {
    v.round() as i64
}

/// A draw target that only records where text puts ink.
#[derive(Default)]
struct Ink {
    points: Vec<(i64, i64)>,
}

impl Ink {
    fn bounds(&self) -> Option<(i64, i64, i64, i64)> {
        let first = *self.points.first()?;
        Some(self.points.iter().fold(
            (first.0, first.1, first.0, first.1),
            |(l, t, r, b), &(x, y)| (l.min(x), t.min(y), r.max(x), b.max(y)),
        ))
    }
}

impl OriginDimensions for Ink {
    fn size(&self) -> Size {
        Size::new(u32::MAX / 4, u32::MAX / 4)
    }
}

impl DrawTarget for Ink {
    type Color = BinaryColor;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, c) in pixels {
            if c.is_on() {
                self.points.push((i64::from(p.x), i64::from(p.y)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GREY: [u8; 3] = [200, 200, 200];

    /// A `w`×`h` mid-grey PNG in `color`, base64.
    fn grey_png(w: u32, h: u32, color: png::ColorType) -> String {
        let channels = match color {
            png::ColorType::Rgba => 4,
            _ => 3,
        };
        let mut data = vec![200u8; (w * h) as usize * channels];
        if channels == 4 {
            data.chunks_exact_mut(4).for_each(|p| p[3] = 255);
        }
        let mut out = Vec::new();
        {
            let mut e = png::Encoder::new(&mut out, w, h);
            e.set_color(color);
            e.set_depth(png::BitDepth::Eight);
            let mut wr = e.write_header().unwrap();
            wr.write_image_data(&data).unwrap();
            wr.finish().unwrap();
        }
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    fn pixels(b64: &str) -> Canvas {
        decode(
            &base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    }

    fn at(c: &Canvas, x: i64, y: i64) -> [u8; 3] {
        let i = ((y * c.width + x) * 3) as usize;
        [c.rgb[i], c.rgb[i + 1], c.rgb[i + 2]]
    }

    fn changed(c: &Canvas) -> usize {
        c.rgb.chunks_exact(3).filter(|p| *p != GREY).count()
    }

    #[test]
    fn draws_dashed_outline_and_label_on_marked_boxes() {
        let props = json!({"12": {"visibility": 1.0, "bbox": [20, 30, 60, 40],
            "clickable": true, "set_of_marks": true}});
        let out = pixels(&overlay(&grey_png(120, 100, png::ColorType::Rgb), &props).unwrap());
        assert_eq!((out.width, out.height), (120, 100));
        // The first dash of the bottom edge starts at the bottom-right corner (80, 70) and
        // runs left; the right edge's first dash starts at (80, 30) going down. Both lie
        // outside the label, which sits at the top-left corner.
        assert_eq!(at(&out, 78, 70), BLACK);
        assert_eq!(at(&out, 78, 69), BLACK);
        assert_eq!(at(&out, 80, 34), BLACK);
        assert_eq!(at(&out, 79, 32), BLACK);
        // Gaps between dashes stay untouched: bottom edge, 8 px past the first dash's end.
        assert_eq!(at(&out, 72, 70), GREY);
        // Inside the box, away from the label, and far outside.
        assert_eq!(at(&out, 50, 55), GREY);
        assert_eq!(at(&out, 5, 90), GREY);
        assert_eq!(at(&out, 110, 5), GREY);
        // The label: white border at its top-left, black inside, white ink of "12".
        let h = (30..=40).filter(|&y| at(&out, 20, y) == WHITE).count();
        assert!(h >= 10, "label border is {h} px tall");
        let label: Vec<[u8; 3]> = (21..36)
            .flat_map(|x| (26..40).map(move |y| (x, y)))
            .map(|(x, y)| at(&out, x, y))
            .collect();
        assert!(label.contains(&BLACK) && label.contains(&WHITE));
    }

    #[test]
    fn skips_unmarked_boxless_and_tiny_elements() {
        let b64 = grey_png(64, 48, png::ColorType::Rgba);
        let props = json!({
            "1": {"bbox": [5, 5, 30, 20], "set_of_marks": false},
            "2": {"bbox": null, "set_of_marks": true},
            "3": {"bbox": [5, 5, 30, 20], "set_of_marks": null},
            "4": {"bbox": [5, 5, 4, 4], "set_of_marks": true},
            "5": {"bbox": [5, 5], "set_of_marks": true}
        });
        let out = pixels(&overlay(&b64, &props).unwrap());
        assert_eq!(changed(&out), 0);
        // The same box, marked, is drawn (so the fixture can show a change).
        let props = json!({"1": {"bbox": [5, 5, 30, 20], "set_of_marks": true}});
        assert!(changed(&pixels(&overlay(&b64, &props).unwrap())) > 50);
    }

    #[test]
    fn boxes_past_the_edges_are_clipped() {
        let props = json!({"a1": {"bbox": [-40, -40, 500, 500], "set_of_marks": true},
                           "b": {"bbox": [30, 2, 100, 100], "set_of_marks": true}});
        let out = pixels(&overlay(&grey_png(40, 30, png::ColorType::Rgb), &props).unwrap());
        assert!(changed(&out) > 0);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            overlay("not base64!", &json!({})),
            Err(MarksError::Base64(_))
        ));
        let not_png = base64::engine::general_purpose::STANDARD.encode(b"GIF89a....");
        assert!(matches!(
            overlay(&not_png, &json!({})),
            Err(MarksError::Decode(_))
        ));
        assert!(overlay("", &json!({})).is_err());
    }

    #[test]
    fn raw_pixels_encode_to_the_same_image() {
        let rgb: Vec<u8> = (0..6 * 4).flat_map(|i| [i as u8, 100, 200]).collect();
        let out = pixels(&encode_rgb(6, 4, rgb.clone()).unwrap());
        assert_eq!((out.width, out.height), (6, 4));
        assert_eq!(out.rgb, rgb);
        assert!(matches!(
            encode_rgb(6, 5, rgb),
            Err(MarksError::Size { len: 72, .. })
        ));
        assert!(encode_rgb(0, 0, Vec::new()).is_err());
    }
}
