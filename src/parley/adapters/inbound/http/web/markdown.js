// Markdown from the model or a user, rendered without letting it inject HTML.
//
// Two layers: marked escapes any raw HTML in the text (it is shown as typed, not parsed),
// then DOMPurify keeps only harmless elements and links to http, https and mailto. Its
// output is a TrustedHTML value: under the page's `require-trusted-types-for 'script'`
// nothing else may be assigned to innerHTML.

import { Marked } from './vendor/marked.esm.js';
import DOMPurify from './vendor/purify.es.mjs';

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);

const marked = new Marked({
  gfm: true,
  breaks: true, // a chat message's newlines are meant as line breaks
  renderer: {
    html: ({ text }) => escapeHtml(text), // raw HTML is text, never markup
    image: ({ href, text }) => escapeHtml(`![${text}](${href})`), // no remote images (tracking)
  },
});

const SAFE_URL = /^(?:https?:|mailto:)/i;

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    if (!node.hasAttribute('href')) return; // its URL was refused: plain text remains
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

const PURIFY = {
  USE_PROFILES: { html: true }, // no SVG or MathML
  ALLOWED_URI_REGEXP: SAFE_URL,
  FORBID_TAGS: ['style', 'img', 'form', 'input', 'button', 'textarea', 'select'],
  FORBID_ATTR: ['style'],
  RETURN_TRUSTED_TYPE: true,
};

/** Replace `element`'s children with `text` rendered as sanitised Markdown. */
export function renderMarkdown(element, text) {
  element.innerHTML = DOMPurify.sanitize(marked.parse(text), PURIFY);
}
