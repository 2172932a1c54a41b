/**
 * A basic accessibility audit of the page as it stands, run inside the browser by the browser
 * test (`page.evaluate(audit)`): the checks of axe-core's kind that need no package. Playwright
 * sends the function's source to the page, so it uses nothing from outside its body.
 *
 * Checked: the document's language; one banner, one main and labelled navigation; one h1 and no
 * skipped heading level; unique ids and aria-labelledby pointing at them; a name for every link,
 * button, image and SVG chart; a label for every form control and progress bar; a caption for
 * every table; and a text contrast of at least 4.5:1 (3:1 for large text), composited over the
 * backgrounds behind it, SVG text included.
 *
 * Type-checked with the dashboard's browser modules (gateway/dashboard/tsconfig.json).
 * @returns {string[]} the problems found, each naming its element
 */
export function audit() {
  /** @type {string[]} */
  const problems = [];

  /** @param {Element} element */
  const name = (element) => {
    const text = (element.textContent ?? '').trim().replace(/\s+/g, ' ').slice(0, 40);
    return `<${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}> "${text}"`;
  };

  /** @param {Element} element */
  const hidden = (element) => element.closest('[aria-hidden="true"], [hidden]') !== null;

  /** The text of the elements an aria-labelledby names; empty when one is missing. @param {Element} element */
  const labelledBy = (element) =>
    (element.getAttribute('aria-labelledby') ?? '')
      .split(/\s+/)
      .filter((id) => id !== '')
      .map((id) => document.getElementById(id)?.textContent?.trim() ?? '')
      .join(' ')
      .trim();

  /** @param {Element} element */
  const accessibleName = (element) =>
    labelledBy(element) ||
    (element.getAttribute('aria-label') ?? '').trim() ||
    (element instanceof HTMLImageElement ? element.alt : '') ||
    (element.textContent ?? '').trim();

  if (!document.documentElement.lang) problems.push('<html> has no lang');

  // Landmarks.
  const banners = [...document.querySelectorAll('header, [role="banner"]')].filter(
    (h) => h.closest('main, article, section') === null,
  );
  if (banners.length !== 1) problems.push(`${banners.length} banners, want 1`);
  if (document.querySelectorAll('main').length !== 1) problems.push('want exactly one <main>');
  for (const nav of document.querySelectorAll('nav')) {
    if (!accessibleName(nav)) problems.push(`${name(nav)} has no label`);
  }

  // Headings.
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].filter(
    (h) => !hidden(h),
  );
  if (headings.filter((h) => h.tagName === 'H1').length !== 1) problems.push('want one <h1>');
  let level = 0;
  for (const heading of headings) {
    const next = Number(heading.tagName.slice(1));
    if (next > level + 1) problems.push(`${name(heading)} skips from h${level} to h${next}`);
    if (!(heading.textContent ?? '').trim()) problems.push(`${name(heading)} is empty`);
    level = next;
  }

  // Ids and references.
  /** @type {Map<string, number>} */
  const ids = new Map();
  for (const element of document.querySelectorAll('[id]')) {
    ids.set(element.id, (ids.get(element.id) ?? 0) + 1);
  }
  for (const [id, count] of ids) if (count > 1) problems.push(`id "${id}" is used ${count} times`);
  for (const element of document.querySelectorAll('[aria-labelledby]')) {
    for (const id of (element.getAttribute('aria-labelledby') ?? '').split(/\s+/)) {
      if (id && !document.getElementById(id))
        problems.push(`${name(element)} names a missing #${id}`);
    }
  }

  // Names and labels.
  for (const element of document.querySelectorAll('a[href], button, [role="button"]')) {
    if (!hidden(element) && !accessibleName(element)) problems.push(`${name(element)} has no name`);
  }
  for (const image of document.querySelectorAll('img')) {
    if (!image.hasAttribute('alt')) problems.push(`${name(image)} has no alt`);
  }
  for (const chart of document.querySelectorAll('svg')) {
    if (hidden(chart)) continue;
    const titled = chart.querySelector(':scope > title')?.textContent?.trim();
    if (!titled || !accessibleName(chart)) problems.push(`an <svg> has no title: ${name(chart)}`);
    if (chart.getAttribute('role') !== 'img')
      problems.push(`an <svg> is not role img: ${name(chart)}`);
  }
  for (const control of document.querySelectorAll('input, select, textarea, progress, meter')) {
    const labels = /** @type {HTMLInputElement} */ (control).labels;
    if ((labels === null || labels.length === 0) && !accessibleName(control)) {
      problems.push(`${name(control)} has no label`);
    }
  }
  for (const tableElement of document.querySelectorAll('table')) {
    if (!tableElement.caption?.textContent?.trim())
      problems.push(`${name(tableElement)} has no caption`);
  }

  // Contrast.
  /** @param {string} color @returns {[number, number, number, number]} */
  const rgba = (color) => {
    const parts = (color.match(/[\d.]+/g) ?? []).map(Number);
    const [r = 0, g = 0, b = 0, a = 1] = parts;
    return color.startsWith('rgb') ? [r, g, b, a] : [0, 0, 0, 0];
  };
  /** @param {[number, number, number, number]} top @param {[number, number, number]} under */
  const over = ([r, g, b, a], [R, G, B]) =>
    /** @type {[number, number, number]} */ ([
      r * a + R * (1 - a),
      g * a + G * (1 - a),
      b * a + B * (1 - a),
    ]);
  /** The opaque colour behind an element: its backgrounds and its ancestors', composited. @param {Element} element */
  const backdrop = (element) => {
    /** @type {[number, number, number, number][]} */
    const layers = [];
    for (let at = /** @type {Element | null} */ (element); at !== null; at = at.parentElement) {
      const layer = rgba(getComputedStyle(at).backgroundColor);
      if (layer[3] > 0) layers.push(layer);
      if (layer[3] >= 1) break;
    }
    return layers.reduceRight(
      (under, layer) => over(layer, under),
      /** @type {[number, number, number]} */ ([255, 255, 255]),
    );
  };
  /** @param {[number, number, number]} rgb */
  const luminance = (rgb) => {
    const [r = 0, g = 0, b = 0] = rgb.map((c) => {
      const s = c / 255;
      return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  /** @type {Set<Element>} */
  const seen = new Set();
  for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
    const element = node.parentElement;
    if (element === null || seen.has(element) || !(node.textContent ?? '').trim()) continue;
    seen.add(element);
    if (element.closest('title, desc, option, script, style, .visually-hidden') || hidden(element))
      continue;
    if (element.getClientRects().length === 0) continue;
    const style = getComputedStyle(element);
    const isSvg = element instanceof SVGElement;
    const ink = rgba(isSvg ? style.fill : style.color);
    const back = backdrop(element);
    const [lighter, darker] = [luminance(over(ink, back)), luminance(back)].sort((x, y) => y - x);
    const ratio = ((lighter ?? 0) + 0.05) / ((darker ?? 0) + 0.05);
    const size = Number.parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`${name(element)} has a contrast of ${ratio.toFixed(2)}:1`);
    }
  }
  return problems;
}
