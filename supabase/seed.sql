-- Local development data for `supabase db reset` (never run in production). Styles and variants are contract
-- data and live in the migrations; this only adds a developer account to sign in with in the local stack:
--
--   email dev@tenkaigen.local, password tenkaigen-dev   (docs/frontend.md; local only)
--
-- The id is the CLI's dev user (worker/commands.py DEV_USER_ID), so `tenkaigen enqueue --dev-user` and a browser
-- signed in as this user see the same jobs. Supabase Auth (GoTrue) signs a user in with a password when
-- auth.users has a bcrypt `encrypted_password` (pgcrypto's crypt + gen_salt('bf'), as Supabase's seeding examples
-- do), a confirmed email, and an 'email' row in auth.identities (provider_id = the user id). GoTrue reads the
-- token columns as strings, so they are '' rather than NULL (NULL makes sign-in fail with "Database error").
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  confirmation_token, recovery_token, email_change_token_new, email_change,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at
)
values (
  '00000000-0000-0000-0000-000000000000', 'd0000000-0000-4000-8000-000000000001', 'authenticated',
  'authenticated', 'dev@tenkaigen.local', extensions.crypt('tenkaigen-dev', extensions.gen_salt('bf')), now(),
  '', '', '', '',
  '{"provider":"email","providers":["email"]}', '{"name":"Local developer"}', now(), now()
)
on conflict (id) do nothing;

insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
values (
  'd0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000001',
  '{"sub":"d0000000-0000-4000-8000-000000000001","email":"dev@tenkaigen.local","email_verified":true}',
  'email', now(), now(), now()
)
on conflict (provider_id, provider) do nothing;
