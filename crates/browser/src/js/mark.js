// Marks every element of one document with BrowserGym's data (spec/browser.md §3): a stable
// `bid` (decimal per document, letters for frame owners, prefixed by the frame's own bid),
// `browsergym_visibility_ratio`, `browsergym_set_of_marks`, and `value`/`checked` mirrored
// into attributes. Called with `this` = the document; returns warning strings.
async function (parentBid) {
  const doc = this;
  const win = doc.defaultView;
  const BID = 'bid';
  const VIS = 'browsergym_visibility_ratio';
  const SOM = 'browsergym_set_of_marks';
  const SOM_TAGS = new Set(['input', 'textarea', 'select', 'button', 'a', 'iframe', 'video',
    'li', 'td', 'option']);
  const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

  // Counters live on the frame's window so bids stay stable across observations and a new
  // document starts again from 0 / 'a'.
  let state = win.__sandboxdMarkState;
  const firstVisit = !state;
  if (firstVisit) {
    state = { next: 0, frameDigits: [0] };
    Object.defineProperty(win, '__sandboxdMarkState', { value: state, configurable: true });
  }
  // Letter ids: a..z, then aA..aZ, bA.. (first letter lower-case, the rest upper-case).
  const nextFrameId = () => {
    const d = state.frameDigits;
    let id = '';
    for (let i = d.length - 1; i >= 0; i--) {
      const ch = LETTERS[d[i]];
      id += i === d.length - 1 ? ch : ch.toUpperCase();
    }
    let i = 0;
    for (; i < d.length; i++) {
      d[i] += 1;
      if (d[i] < LETTERS.length) break;
      d[i] = 0;
    }
    if (i === d.length) d.push(0);
    return id;
  };

  // All elements in document order, shadow-root content right after its host.
  const elements = [];
  const collect = (root) => {
    for (const el of root.querySelectorAll('*')) {
      elements.push(el);
      if (el.shadowRoot) collect(el.shadowRoot);
    }
  };
  collect(doc);

  const pending = new Set();
  let release = null;
  const observer = new win.IntersectionObserver((entries) => {
    for (const entry of entries) {
      entry.target.setAttribute(VIS, String(Math.round(entry.intersectionRatio * 100) / 100));
      pending.delete(entry.target);
    }
    if (pending.size === 0 && release) release();
  }, { threshold: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1] });

  const elementAt = (x, y) => {
    let root = doc;
    let last = null;
    let el = null;
    do {
      last = el;
      el = root.elementFromPoint(x, y);
      root = el && el.shadowRoot;
    } while (root && el !== last);
    return el;
  };
  const centerClickReachesSelfOrChild = (el) => {
    const r = el.getBoundingClientRect();
    const hit = elementAt((r.left + r.right) / 2, (r.top + r.bottom) / 2);
    return !!hit && (hit === el || el.contains(hit));
  };

  const seen = new Set();
  const somButtons = [];
  for (const el of elements) {
    el.setAttribute(VIS, '0');
    pending.add(el);
    observer.observe(el);
    if (typeof el.value !== 'undefined') {
      try { el.setAttribute('value', el.value); } catch (e) { /* exotic value */ }
    }
    if (typeof el.checked !== 'undefined') {
      if (el.checked === true) el.setAttribute('checked', '');
      else el.removeAttribute('checked');
    }
    // A bid already present on a first visit came from the page itself: replace it rather
    // than failing the whole observation (BrowserGym raises here).
    let bid = firstVisit ? null : el.getAttribute(BID);
    if (bid !== null && seen.has(bid)) bid = null;
    if (bid === null) {
      const tag = el.tagName.toLowerCase();
      const local = (tag === 'iframe' || tag === 'frame') ? nextFrameId() : String(state.next++);
      bid = parentBid + local;
      el.setAttribute(BID, bid);
    }
    seen.add(bid);

    // Set-of-marks flag (WebVoyager heuristics, as BrowserGym). Cheap checks first: they
    // are all required, and hit-testing every element would be slow on large pages.
    el.setAttribute(SOM, '0');
    const tag = el.tagName.toLowerCase();
    if (!(SOM_TAGS.has(tag) || el.onclick != null || win.getComputedStyle(el).cursor === 'pointer')) continue;
    const r = el.getBoundingClientRect();
    if ((r.right - r.left) * (r.bottom - r.top) < 20) continue;
    if (!centerClickReachesSelfOrChild(el)) continue;
    if (!somButtons.every((b) => !b.contains(el))) continue;
    let parent = el.parentElement;
    if (parent && parent.tagName.toLowerCase() === 'span' && parent.children.length === 1 &&
        parent.getAttribute('role') && parent.getAttribute(SOM) === '1') continue;
    el.setAttribute(SOM, '1');
    if (el.matches('button, a, input[type="button"], div[role="button"]')) somButtons.push(el);
    while (parent) {
      if (parent.getAttribute(SOM) === '1') parent.setAttribute(SOM, '0');
      parent = parent.parentElement;
    }
  }

  const warnings = [];
  if (pending.size > 0) {
    const done = await new Promise((resolve) => {
      release = () => resolve(true);
      win.setTimeout(() => resolve(false), 1000);
    });
    if (!done) {
      warnings.push('Frame marking: not all elements have been visited by the intersection_observer after 1000 ms');
    }
  }
  observer.disconnect();
  return warnings;
}
