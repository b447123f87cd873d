"""The prompt bank's group counts in the run header, and the methods text that cites them."""

from __future__ import annotations

from pathlib import Path

from harness.prompts import load_bank
from harness.registry import CLAIMS
from harness.report.methods import bank_paragraph, methods_markdown
from harness.report.provenance import prompt_bank_summary


class Config:
    """The one method of ``pytest.Config`` the summary reads; ``options=None``: the option does not exist."""

    def __init__(self, options: dict | None) -> None:
        self.options = options

    def getoption(self, name: str):
        if self.options is None or name not in self.options:
            raise ValueError(f"no option named {name!r}")
        return self.options[name]


def test_the_shipped_bank_is_summarised_with_its_hash_groups_levels_and_pairs() -> None:
    bank = load_bank()
    summary = prompt_bank_summary(Config({"prompt_bank": None}), bank.content_hash)
    assert summary["sha256"] == bank.content_hash and "note" not in summary
    assert summary["groups"]["recursive"] == len(bank.group("recursive")) > 0
    assert sum(summary["recursive_levels"].values()) == summary["groups"]["recursive"]
    assert summary["recorded_pairs"]["recursive_baseline"] == len(bank.pairs("recursive_baseline"))
    text = bank_paragraph([], {"prompt_bank_sha256": bank.content_hash, "prompt_bank": summary})
    assert f"{summary['groups']['baseline']} baseline" in text and "exactly equal content-token counts" in text


def test_a_hash_other_than_the_records_is_noted_and_errors_do_not_fail_the_report(tmp_path: Path) -> None:
    assert "not this bank's" in prompt_bank_summary(Config({"prompt_bank": None}), "other-hash")["note"]
    assert prompt_bank_summary(Config(None), "x") is None  # the report plugin without the harness's options
    broken = tmp_path / "bank.json"
    broken.write_text("{not json")
    assert "error" in prompt_bank_summary(Config({"prompt_bank": str(broken)}), None)


def test_methods_state_the_family_of_every_claim_ci_only_ones_included() -> None:
    records = [{"claim": c, "model": "m", "verdict": "PASS"} for c in ("kv_transfer", "v_patch_null", "rope_rerotation")]
    text = methods_markdown(records, {"run_id": "r", "models": {}})
    kv, null, rope = (text.split(f"(`{c}` v{CLAIMS[c].version}")[1].split("\n")[0]
                      for c in ("kv_transfer", "v_patch_null", "rope_rerotation"))
    assert "Multiplicity: family 'kv_transfer' (familywise α = 0.01, m = 2)" in kv and f"Planned n = {CLAIMS['kv_transfer'].planned_n}" in kv
    assert "Multiplicity: no p criterion" in null and "TOST" in null
    assert "Coverage: 8 prompts" in rope and "## Engine checks" in text
    assert "This run's header does not record the bank's group counts" in text
