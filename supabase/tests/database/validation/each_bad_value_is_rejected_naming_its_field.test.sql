begin;
select plan(22);

select tests.create_supabase_user('alice');
select tests.authenticate_as('alice');

-- TEST: every request bound raises 22023 with a message that starts with the field name
select throws_ok(format('insert into public.generation_jobs (%s) values (%s)', cols, vals), '22023', msg,
                 format('rejects %s', label))
from (values
  ('empty prompt', 'prompt', quote_literal('   '), 'prompt: must not be empty'),
  ('a 2001-character prompt', 'prompt', quote_literal(repeat('a', 2001)),
   'prompt: must be at most 2000 characters (got 2001)'),
  ('an oversize expanded_prompt', 'prompt, expanded_prompt', '''x'', ' || quote_literal(repeat('b', 4001)),
   'expanded_prompt: must be at most 4000 characters (got 4001)'),
  ('an oversize negative_prompt', 'prompt, negative_prompt', '''x'', ' || quote_literal(repeat('c', 2001)),
   'negative_prompt: must be at most 2000 characters (got 2001)'),
  ('width not a multiple of 16', 'prompt, width', '''x'', 1000',
   'width: must be a multiple of 16 between 256 and 2048 (got 1000)'),
  ('width too small', 'prompt, width', '''x'', 128', 'width: must be a multiple of 16 between 256 and 2048 (got 128)'),
  ('height too large', 'prompt, height', '''x'', 4096',
   'height: must be a multiple of 16 between 256 and 2048 (got 4096)'),
  ('zero steps', 'prompt, steps', '''x'', 0', 'steps: must be between 1 and 100 (got 0)'),
  ('too many steps', 'prompt, steps', '''x'', 101', 'steps: must be between 1 and 100 (got 101)'),
  ('CFG below 1', 'prompt, true_cfg_scale', '''x'', 0.5', 'true_cfg_scale: must be between 1 and 20 (got 0.5)'),
  ('CFG NaN', 'prompt, true_cfg_scale', '''x'', ''NaN''', 'true_cfg_scale: must be between 1 and 20 (got NaN)'),
  ('a negative seed', 'prompt, seed', '''x'', -1', 'seed: must be between 0 and 4294967295 (got -1)'),
  ('a seed above 2^32-1', 'prompt, seed', '''x'', 4294967296',
   'seed: must be between 0 and 4294967295 (got 4294967296)'),
  ('an unknown style', 'prompt, style', '''x'', ''cubism''', 'style: unknown style ''cubism'''),
  ('an unknown variant', 'prompt, variant', '''x'', ''turbo''', 'variant: unknown variant ''turbo'''),
  ('a disabled variant', 'prompt, variant', '''x'', ''tiny''', 'variant: unknown variant ''tiny'''),
  ('edit without an init image', 'prompt, variant', '''x'', ''edit''', 'init_image_path: required for variant edit'),
  ('metadata that is an array', 'prompt, metadata', '''x'', ''[1,2]''', 'metadata: must be a JSON object (got array)'),
  ('oversize metadata', 'prompt, metadata', '''x'', ' || quote_literal(jsonb_build_object('k', repeat('v', 5000))::text),
   'metadata: must be at most 4096 bytes as JSON (got 5009)'),
  ('a bad client_request_id', 'prompt, client_request_id', '''x'', ''has spaces''',
   'client_request_id: must be 1 to 128 characters of A-Z a-z 0-9 . _ : -'),
  ('an init image in another user''s folder', 'prompt, init_image_path',
   '''x'', ''00000000-0000-0000-0000-000000000000/in.png''',
   'init_image_path: must be <your user id>/<file name> in bucket generation-inputs')
) as t(label, cols, vals, msg);

reset role;
-- TEST: nothing was created by any of them
select is((select count(*)::integer from public.generation_jobs), 0, 'no rejected insert created a row');

select * from finish();
rollback;
