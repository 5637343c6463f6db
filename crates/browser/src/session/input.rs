//! Mouse input as Playwright sends it: moves, presses, clicks and the wheel, all at the
//! last mouse position the session remembers.

use chromiumoxide::Page;
use serde_json::json;

use super::{ActionError, Session};
use crate::cdp;

impl Session {
    /// Moves the mouse.
    pub async fn mouse_move(
        &mut self,
        page: &Page,
        x: f64,
        y: f64,
        buttons: u8,
    ) -> Result<(), ActionError> {
        self.mouse = (x, y);
        cdp::call(
            page,
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseMoved", "x": x, "y": y, "buttons": buttons,
                    "button": if buttons & 1 != 0 { "left" } else { "none" } }),
        )
        .await?;
        Ok(())
    }

    /// Presses or releases a mouse button at the current position.
    pub async fn mouse_button(
        &mut self,
        page: &Page,
        down: bool,
        button: &str,
        modifiers: u8,
        click_count: u8,
    ) -> Result<(), ActionError> {
        let (x, y) = self.mouse;
        let mask = match button {
            "left" => 1,
            "right" => 2,
            "middle" => 4,
            _ => 0,
        };
        cdp::call(
            page,
            "Input.dispatchMouseEvent",
            json!({
                "type": if down { "mousePressed" } else { "mouseReleased" },
                "x": x, "y": y, "button": button,
                "buttons": if down { mask } else { 0 },
                "clickCount": click_count, "modifiers": modifiers,
            }),
        )
        .await?;
        Ok(())
    }

    /// Clicks `count` times (2 = a real double click: two press/release pairs, the second
    /// with clickCount 2, so the page sees `click`, `click`, `dblclick`).
    pub async fn click_at(
        &mut self,
        page: &Page,
        (x, y): (f64, f64),
        button: &str,
        modifiers: u8,
        count: u8,
    ) -> Result<(), ActionError> {
        self.mouse_move(page, x, y, 0).await?;
        for n in 1..=count {
            self.mouse_button(page, true, button, modifiers, n).await?;
            self.mouse_button(page, false, button, modifiers, n).await?;
        }
        Ok(())
    }

    /// Mouse wheel at the current mouse position.
    pub async fn wheel(&mut self, dx: f64, dy: f64) -> Result<(), ActionError> {
        let page = self.active_page()?;
        let (x, y) = self.mouse;
        cdp::call(
            &page,
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseWheel", "x": x, "y": y, "deltaX": dx, "deltaY": dy }),
        )
        .await?;
        // The wheel scrolls asynchronously; wait for the next frames so the observation sees
        // the scrolled page.
        let _ = cdp::call(
            &page,
            "Runtime.evaluate",
            json!({ "expression": "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
                    "awaitPromise": true }),
        )
        .await;
        Ok(())
    }
}
