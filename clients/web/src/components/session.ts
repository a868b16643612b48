// Who is signed in and the people directory, handed down once by the app (docs/accounts.md).
// With accounts (`funnel serve --auth-secret`) `me` is the signed-in person and `directory` the
// people of `GET /api/v1/people`; in local mode `accounts` is false and the directory empty, and
// the pages fall back to the browser's roster (src/ui/users.ts).

import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Me } from "../ui/auth";
import { EMPTY_DIRECTORY, type Directory } from "../ui/people";

export interface SessionActions {
  /** The server keeps accounts: people sign in, the pickers offer the directory only. */
  readonly accounts: boolean;
  /** The signed-in person (or a token's user); null in local mode. */
  readonly me: Me | null;
  readonly directory: Directory;
  /** Ends this browser's session; the page then shows the sign-in form. */
  readonly signOut: () => Promise<void>;
  /** Reads the directory again (after the People page changed someone). */
  readonly reloadDirectory: () => void;
}

const LOCAL: SessionActions = {
  accounts: false,
  me: null,
  directory: EMPTY_DIRECTORY,
  signOut: () => Promise.resolve(),
  reloadDirectory: () => {},
};

export const SessionContext = createContext<SessionActions>(LOCAL);

export function useSession(): SessionActions {
  return useContext(SessionContext);
}
