// The token of an emailed link (#token=...). It travels in the fragment, which browsers
// never send to a server, so it stays out of every log; the page takes it out of the
// address bar too (and so out of this tab's history) before anything else.

export function takeLinkToken() {
  const found = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return found;
}

// A link opened while its page is showing changes only the fragment: no new page loads,
// so the page hears of the new token here.
export function onNewLinkToken(callback) {
  window.addEventListener("hashchange", () => {
    const next = takeLinkToken();
    if (next) callback(next);
  });
}
