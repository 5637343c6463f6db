// Small page-side helpers, each a function declaration run with `Runtime.callFunctionOn`.
// Kept in one file so the Rust side can pick them by name (see js.rs).

//@ find_by_bid: `this` = document; the element whose bid attribute equals `bid`, searching
//  open shadow roots too (Playwright's test-id locator does), or null.
function (bid) {
  const sel = '[bid="' + CSS.escape(bid) + '"]';
  const direct = this.querySelector(sel);
  if (direct) return direct;
  const stack = [this];
  while (stack.length) {
    const root = stack.pop();
    for (const el of root.querySelectorAll('*')) {
      if (!el.shadowRoot) continue;
      const found = el.shadowRoot.querySelector(sel);
      if (found) return found;
      stack.push(el.shadowRoot);
    }
  }
  return null;
}

//@ frame_owners: `this` = document; every iframe/frame element, shadow roots included.
function () {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      if (tag === 'iframe' || tag === 'frame') {
        const sandbox = el.getAttribute('sandbox');
        // Frames whose scripts are blocked cannot be marked (BrowserGym skips them too).
        if (sandbox === null || sandbox.split(/\s+/).includes('allow-scripts')) out.push(el);
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(this);
  return out;
}

//@ active_element: `this` = document; the focused element, through shadow roots.
function () {
  let el = this.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
  return el;
}

//@ describe: `this` = element; [bid or "", lower-case tag name].
function () {
  return [this.getAttribute('bid') || '', this.tagName.toLowerCase()];
}

//@ prepare_fill: `this` = element; validates and selects the editable content like
//  Playwright's fill. Returns "error:<text>", "done" (value already set) or "type".
function (value) {
  const el = this;
  const tag = el.tagName.toLowerCase();
  const editable = () => !el.disabled && !el.readOnly;
  if (tag === 'input') {
    const type = (el.getAttribute('type') || '').toLowerCase();
    const setValueTypes = ['color', 'date', 'time', 'datetime-local', 'month', 'range', 'week'];
    const typeTypes = ['', 'email', 'number', 'password', 'search', 'tel', 'text', 'url'];
    if (!setValueTypes.includes(type) && !typeTypes.includes(type)) {
      return 'error:Error: Input of type "' + type + '" cannot be filled';
    }
    if (!editable()) return 'error:TimeoutError: Timeout 500ms exceeded.\n  - element is not editable';
    if (type === 'number' && value.trim() !== '' && isNaN(Number(value))) {
      return 'error:Error: Cannot type text into input[type=number]';
    }
    if (setValueTypes.includes(type)) {
      value = value.trim();
      el.focus();
      el.value = value;
      if (el.value !== value) return 'error:Error: Malformed value';
      el.dispatchEvent(new Event('input', { bubbles: true, composed: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
      return 'done';
    }
    el.focus();
    el.select();
    return 'type';
  }
  if (tag === 'textarea') {
    if (!editable()) return 'error:TimeoutError: Timeout 500ms exceeded.\n  - element is not editable';
    el.focus();
    el.select();
    return 'type';
  }
  if (!el.isContentEditable) {
    return 'error:Error: Element is not an <input>, <textarea> or [contenteditable] element';
  }
  el.focus();
  const range = el.ownerDocument.createRange();
  range.selectNodeContents(el);
  const sel = el.ownerDocument.defaultView.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
  return 'type';
}

//@ select_options: `this` = element; selects options by value or label like Playwright.
//  Returns "" or an error text.
function (wanted) {
  const el = this;
  if (el.tagName.toLowerCase() !== 'select') return 'Error: Element is not a <select> element';
  const options = Array.from(el.options);
  const chosen = [];
  for (const w of wanted) {
    const opt = options.find((o) => o.value === w || o.label === w);
    if (!opt) return 'TimeoutError: Timeout 500ms exceeded.\n  - did not find some options: "' + w + '"';
    chosen.push(opt);
  }
  if (chosen.length > 1 && !el.multiple) return 'Error: Element is not a <select multiple> element';
  for (const o of options) o.selected = chosen.includes(o);
  el.dispatchEvent(new Event('input', { bubbles: true, composed: true }));
  el.dispatchEvent(new Event('change', { bubbles: true }));
  return '';
}

//@ focus: `this` = element.
function () {
  this.focus();
}

//@ is_file_input: `this` = element.
function () {
  return this.tagName.toLowerCase() === 'input' && (this.type || '').toLowerCase() === 'file';
}

//@ settle: `this` = document; resolves after pending tasks (e.g. a scheduled form
//  submission) had their turn, so a navigation they start is already requested.
function () {
  const win = this.defaultView;
  return new Promise((resolve) => win.setTimeout(() => win.setTimeout(resolve, 0), 0));
}
