import { api, nextLink } from "./api.js";
import { byId, setText, show } from "./ui.js";

/**
 * A list filled from a paginated list endpoint, its parts found by id:
 * `${name}-body`, `-table`, `-empty`, `-loading`, `-error` and the `-more` button,
 * which appends the page that the last response's Link header points to.
 * `onData(items, append)` keeps the items and draws them; it returns how many there
 * are in all. Returns load(): the first page again, replacing what was there.
 */
export function pagedList(name, firstUrl, { onData, errorText, onNotFound = null }) {
  const more = byId(`${name}-more`);
  let next = null;

  async function load(url = firstUrl) {
    const append = url !== firstUrl;
    more.disabled = true;
    try {
      const { data, headers } = await api("GET", url);
      const total = onData(data, append);
      next = nextLink(headers);
      show(byId(`${name}-empty`), total === 0);
      show(byId(`${name}-table`), total > 0);
      show(more, Boolean(next));
      setText(byId(`${name}-error`), "");
    } catch (error) {
      if (error.redirecting) return;
      if (error.status === 404 && !append && onNotFound) onNotFound();
      else setText(byId(`${name}-error`), `${errorText} ${error.message}`);
    } finally {
      more.disabled = false;
      show(byId(`${name}-loading`), false);
    }
  }

  more.addEventListener("click", () => {
    if (next) load(next);
  });
  return () => load();
}
