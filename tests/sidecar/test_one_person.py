"""One person is one person: a token's subject, the recipient hashes of cards and the
store's owners follow one rule (addresses.normalize). A Kelvin-sign "Kate" is not Kate."""

from __future__ import annotations

import pytest

from .harness import Env

pytestmark = pytest.mark.asyncio

KATE = "kate@client.example"
KELVIN_KATE = "\u212aate@client.example"  # KELVIN SIGN, which str.lower() turns into "k"


async def test_a_kelvin_sign_token_is_not_kates(env: Env) -> None:
    async with env.sidecar() as api:
        assert (await api.put_profile(KATE)).status == 200
        method = await api.method(KATE)
        card = env.card([KATE])

        profile = await api.call("GET", "/v1/billing-profile", KELVIN_KATE)
        assert (profile.status, profile.code) == (401, "invalid_token"), profile
        assert "Lovelace" not in profile.text
        review = await api.verify(KELVIN_KATE, card)
        assert (review.status, review.code) == (401, "invalid_token"), review
        listed = await api.call("GET", f"/v1/payment-methods/{method}", KELVIN_KATE)
        assert listed.status == 401, listed

        # Kate herself, in any ASCII case, is one person: her profile, her cards.
        for spelling in (KATE, "Kate@Client.Example", "KATE@CLIENT.EXAMPLE."):
            mine = await api.call("GET", "/v1/billing-profile", spelling)
            assert (mine.status, mine.body["name"]) == (200, "Ada Lovelace"), (spelling, mine)
            assert (await api.verify(spelling, card)).body["status"] == "payable"


async def test_a_card_for_a_kelvin_sign_address_is_not_for_kate(env: Env) -> None:
    # Whatever a mail system makes of such an address, its card is not Kate's.
    async with env.sidecar() as api:
        card = env.card([KELVIN_KATE])
        r = await api.verify(KATE, card)
        assert (r.status, r.code) == (403, "not_a_recipient"), r


async def test_an_idn_user_is_one_owner_in_either_spelling(env: Env) -> None:
    async with env.sidecar() as api:
        assert (await api.put_profile("ana@bücher.example")).status == 200
        same = await api.call("GET", "/v1/billing-profile", "Ana@XN--BCHER-KVA.example")
        assert same.body["name"] == "Ada Lovelace", same
        card = env.card(["ana@xn--bcher-kva.example"])
        assert (await api.verify("ana@Bücher.example", card)).body["status"] == "payable"
        # The organization switch reads the domain the same way.
        switch = "/v1/admin/orgs/xn--bcher-kva.example"
        admin = await api.call("PUT", switch, "admin@localhost", json_body={"pay_enabled": False})
        assert admin.status == 200, admin
        assert (await api.verify("ana@bücher.example", card)).body["status"] == "org_disabled"
