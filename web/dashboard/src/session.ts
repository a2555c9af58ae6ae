// The API key lives in this tab's session storage only: closing the tab signs out, and
// nothing is written where another tab or a later visitor could read it.
const KEY = "hookline.api_key";

export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  signIn: (key: string) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.removeItem(KEY),
};
