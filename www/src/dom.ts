// A few DOM helpers: the app is small enough to need no framework.
import { explain } from './errors';

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | boolean | number | EventListener | undefined>;

/** An element with attributes (`on*` are listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c);
  }
  return el;
}

/** Replaces the children of `el`. */
export function put(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren(...(children.flat().filter((c) => c !== null && c !== undefined && c !== false) as (Node | string)[]));
}

let ids = 0;
/** A fresh element id. */
export function uid(prefix: string): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field; returns the row and the input. */
export function field(
  label: string,
  input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement,
  hint?: Node | string,
): HTMLElement {
  input.id ||= uid('f');
  const hintEl = hint ? h('small', { id: uid('hint'), class: 'hint' }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl);
}

/** Copies `text` to the clipboard; resolves to whether it worked. */
export async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A settings form: on submit, `check` first (a message refusing what was
 * typed, or null), then `act`, with `go` disabled and `msg` saying `busy`
 * meanwhile; what `act` throws is explained in `msg`.
 */
export function onSubmit(
  form: HTMLFormElement,
  go: HTMLButtonElement,
  msg: HTMLElement,
  busy: string,
  act: () => Promise<void>,
  check?: () => string | null,
): void {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.className = '';
    const refused = check?.();
    if (refused) {
      msg.className = 'error';
      msg.textContent = refused;
      return;
    }
    go.disabled = true;
    msg.textContent = busy;
    try {
      await act();
    } catch (e) {
      msg.className = 'error';
      msg.textContent = explain(e);
    } finally {
      go.disabled = false;
    }
  });
}
