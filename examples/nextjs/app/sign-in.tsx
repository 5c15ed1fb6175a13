"use client";

import { type FormEvent, useEffect, useState } from "react";
import { createClient } from "@/lib/supabase/client";

/** Email + password sign-in (locally: the seed user dev@tenkaigen.local / tenkaigen-dev). */
export function SignIn() {
  const [supabase] = useState(createClient);
  const [email, setEmail] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void supabase.auth.getUser().then(({ data }) => setEmail(data.user?.email ?? null));
    const { data } = supabase.auth.onAuthStateChange((_event, session) => {
      setEmail(session?.user.email ?? null);
    });
    return () => data.subscription.unsubscribe();
  }, [supabase]);

  async function signIn(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const { error } = await supabase.auth.signInWithPassword({
      email: String(form.get("email")),
      password: String(form.get("password")),
    });
    setError(error?.message ?? null);
  }

  if (email) {
    return (
      <p>
        Signed in as {email} <button onClick={() => void supabase.auth.signOut()}>Sign out</button>
      </p>
    );
  }
  return (
    <form onSubmit={signIn}>
      <input name="email" type="email" placeholder="dev@tenkaigen.local" required />
      <input name="password" type="password" placeholder="password" required />
      <button type="submit">Sign in</button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}
