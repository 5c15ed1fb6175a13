-- Local development data for `supabase db reset` (never run in production). Styles and variants are contract
-- data and live in the migrations; this only adds a developer account to sign in with in the local stack.
insert into auth.users (id, email, aud, role, email_confirmed_at, raw_app_meta_data, raw_user_meta_data,
                        created_at, updated_at)
values ('00000000-0000-4000-8000-00000000d0e5', 'dev@tenkaigen.local', 'authenticated', 'authenticated', now(),
        '{"provider":"email","providers":["email"]}', '{"name":"Local developer"}', now(), now())
on conflict (id) do nothing;
