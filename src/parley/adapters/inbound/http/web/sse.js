// Server-Sent Events read from a fetch() Response.
//
// EventSource cannot POST a body nor send an Authorization header, so the stream is read
// from fetch()'s ReadableStream and parsed here, as the HTML standard's event-stream
// format says: lines end with CRLF, LF or CR; a blank line dispatches the event;
// lines starting with ':' are comments (Parley's `: ping`); `data:` lines join with LF.

/**
 * Yields {event, data} for every event of `response`'s body, `data` parsed as JSON.
 * Ends when the body ends; throws an AbortError when the fetch's signal is aborted.
 */
export async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  let event = { name: 'message', data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      pending += value;
      const { lines, rest } = completeLines(pending);
      pending = rest;
      for (const line of lines) {
        if (line === '') {
          if (event.data.length > 0) yield { event: event.name, data: JSON.parse(event.data.join('\n')) };
          event = { name: 'message', data: [] };
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event.name = text;
          else if (field === 'data') event.data.push(text);
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** Split off the complete lines of `text`; a trailing CR waits, as an LF may follow it. */
function completeLines(text) {
  const lines = [];
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c !== '\n' && c !== '\r') continue;
    if (c === '\r' && i + 1 === text.length) break;
    lines.push(text.slice(start, i));
    if (c === '\r' && text[i + 1] === '\n') i += 1;
    start = i + 1;
  }
  return { lines, rest: text.slice(start) };
}
