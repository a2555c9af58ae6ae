// The dashboard: sign in with an API key, then destinations, the delivery log and test
// mode, all over the public API of the server that serves this page.
import { render } from "preact";
import { useMemo, useState } from "preact/hooks";
import { Client } from "./api/client";
import { api } from "./api/endpoints";
import { ApiContext } from "./context";
import { useRoute, href } from "./router";
import { session } from "./session";
import { SignIn } from "./pages/sign-in";
import { Destinations } from "./pages/destinations";
import { DestinationView } from "./pages/destination";
import { DestinationForm } from "./pages/destination-form";
import { Deliveries } from "./pages/deliveries";
import { DeliveryView } from "./pages/delivery";
import { TestMode } from "./pages/test-mode";
import "uplot/dist/uPlot.min.css";
import "./styles.css";

function App() {
  const [key, setKey] = useState(session.key());
  const [notice, setNotice] = useState<string>();
  const signOut = (why?: string) => {
    session.signOut();
    setKey(null);
    setNotice(why);
  };
  const client = useMemo(
    () => (key ? api(new Client(key, () => signOut("The server no longer accepts that API key. Sign in again."))) : null),
    [key],
  );
  if (!client) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(k) => {
          session.signIn(k);
          setNotice(undefined);
          setKey(k);
        }}
      />
    );
  }
  return (
    <ApiContext.Provider value={client}>
      <Shell onSignOut={() => signOut()} />
    </ApiContext.Provider>
  );
}

function Shell({ onSignOut }: { onSignOut: () => void }) {
  const route = useRoute();
  const [section = "deliveries", id, sub] = route.path;
  const nav = [
    ["deliveries", "Delivery log"],
    ["destinations", "Destinations"],
    ["test-mode", "Test mode"],
  ] as const;
  return (
    <>
      <header class="top">
        <a class="brand" href={href(["deliveries"])}>
          Hookline
        </a>
        <nav aria-label="Sections">
          {nav.map(([name, label]) => (
            <a key={name} href={href([name])} aria-current={section === name ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <button type="button" class="small quiet" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main>{view(section, id, sub, route.query)}</main>
    </>
  );
}

function view(section: string, id: string | undefined, sub: string | undefined, query: URLSearchParams) {
  switch (section) {
    case "destinations":
      if (id === "new") return <DestinationForm />;
      if (id && sub === "edit") return <DestinationForm id={id} />;
      if (id) return <DestinationView id={id} />;
      return <Destinations />;
    case "test-mode":
      return <TestMode />;
    case "deliveries":
      if (id) return <DeliveryView id={id} />;
      return <Deliveries query={query} />;
    default:
      return <p>There is no such page here.</p>;
  }
}

render(<App />, document.getElementById("app")!);
