"""Lightning variants run without true CFG, in the database and in the pipeline alike (migrations
*_styles_and_variants.sql and *_generation_jobs.sql, modal_app/pipeline.py): a client's CFG above 1 on one is a
22023 error naming `true_cfg_scale`, and the variants the database limits to 1 are exactly the pipeline's Lightning
variants."""

from __future__ import annotations

import psycopg
import pytest

from modal_app import pipeline
from tests.support import as_client, create_user, postgrest_insert


def test_the_database_limits_exactly_the_pipelines_lightning_variants_to_cfg_1(admin: psycopg.Connection) -> None:
    limits = dict(admin.execute("select id, max_true_cfg_scale from public.generation_variants").fetchall())
    assert set(limits) == set(pipeline.VARIANTS)
    for variant, limit in limits.items():
        spec = pipeline.variant_spec(variant)
        expected = pipeline.LIGHTNING_MAX_TRUE_CFG_SCALE if spec.lightning else pipeline.MAX_TRUE_CFG_SCALE
        assert limit == expected, variant
        assert spec.true_cfg_scale <= limit


@pytest.mark.parametrize("variant", ["lightning-4", "lightning-8"])
def test_a_client_asking_for_cfg_on_lightning_gets_an_error_naming_the_field(
    admin: psycopg.Connection, variant: str
) -> None:
    user = create_user(admin)
    with as_client(admin, user) as conn, pytest.raises(psycopg.Error) as raised:
        postgrest_insert(conn, {"prompt": "a fox", "variant": variant, "true_cfg_scale": 2.5})
    assert raised.value.sqlstate == "22023"
    assert raised.value.diag.column_name == "true_cfg_scale"
    assert raised.value.diag.message_primary == (
        f"true_cfg_scale: variant {variant} runs without true CFG and accepts at most 1 (got 2.5)"
    )
    with pytest.raises(pipeline.InvalidRequest, match=r"^true_cfg_scale: "):
        pipeline.PipelineRequest.from_dict({"prompt": "a fox", "variant": variant, "true_cfg_scale": 2.5})


def test_cfg_on_base_is_accepted_by_both(admin: psycopg.Connection) -> None:
    user = create_user(admin)
    with as_client(admin, user) as conn:
        [(job,)] = postgrest_insert(conn, {"prompt": "a fox", "variant": "base", "true_cfg_scale": 2.5})
    assert admin.execute("select true_cfg_scale from generation_jobs where id = %s", (job,)).fetchone()[0] == 2.5
    request = pipeline.PipelineRequest.from_dict({"prompt": "a fox", "variant": "base", "true_cfg_scale": 2.5})
    assert request.true_cfg_scale == 2.5
