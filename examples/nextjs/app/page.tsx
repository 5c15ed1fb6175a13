import { EditForm } from "./edit-form";
import { Hero } from "./hero";
import { SignIn } from "./sign-in";

export default function Home() {
  return (
    <main style={{ maxWidth: 640, margin: "2rem auto", fontFamily: "sans-serif" }}>
      <h1>TenkaiGen</h1>
      <SignIn />
      <Hero />
      <EditForm />
    </main>
  );
}
