// "Keep me signed in": opt-in, the key is then kept in localStorage (every tab, until sign-out)
// instead of only this tab's sessionStorage. localStorage can throw (storage disabled): then the
// key is simply not kept.

const KEY = "chatserver.token.kept";

export const keptToken = {
  get() { try { return localStorage.getItem(KEY); } catch { return null; } },
  set(token) { try { localStorage.setItem(KEY, token); } catch { /* see above */ } },
  remove() { try { localStorage.removeItem(KEY); } catch { /* see above */ } },
};
