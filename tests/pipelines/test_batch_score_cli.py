"""`mlops batch-score` on the local target, through the real entry point."""

from pathlib import Path

import pandas as pd

from tests.bundles import diabetes_data as bundled_diabetes


def test_batch_score_writes_the_file_and_a_summary(mlops, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GIT_COMMIT", "c" * 40)
    code, out = mlops("run", "--no-release")
    assert code == 0, out
    from pipelines.registry import ModelRegistry
    from pipelines.settings import load_settings

    settings = load_settings()
    registry = ModelRegistry(settings.tracking_uri, settings.model_name)
    registry.set_production(registry.get("diabetes-ridge:1"))
    inputs = tmp_path / "in"
    inputs.mkdir()
    features = bundled_diabetes().drop(columns=["target"])
    features.to_csv(inputs / "demo rows.csv", index=False)
    features.head(10).to_parquet(inputs / "more.parquet", index=False)
    output = tmp_path / "out" / "scored.parquet"
    code, out = mlops("batch-score", "--input", str(inputs), "--output", str(output))
    assert code == 0, out
    assert "452 rows from 2 files scored with diabetes-ridge:1 in" in out
    assert "rows/s" in out
    scored = pd.read_parquet(output)
    assert scored["source_file"].tolist() == ["demo rows.csv"] * 442 + ["more.parquet"] * 10

    (inputs / "zz.csv").write_text("age\n1\n")
    code, out = mlops("batch-score", "--input", str(inputs), "--output", str(output))
    assert code != 0
    assert "zz.csv: the columns must be exactly the model's 10 features" in out
    assert len(pd.read_parquet(output)) == 452  # the previous output is untouched
