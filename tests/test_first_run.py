"""What a new user meets first, following the README (issue 22, items 1 and 2)."""
import os
import re
import shlex
from pathlib import Path

import pytest

from inpaint_gui import cli
from inpaint_gui.engine import registry, weights
from inpaint_gui.training import collect

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _readme_commands(prefix: str) -> "list[list[str]]":
    return [shlex.split(line.split("#")[0]) for line in README.splitlines()
            if line.strip().startswith(prefix)]


# ----------------------------------------------------------------------------- item 1: SRN

def test_readme_srn_example_writes_a_file_the_app_finds(monkeypatch):
    monkeypatch.delenv("INPAINT_GUI_MODELS", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    cmds = _readme_commands("inpaint models convert-srn")
    assert cmds, "the README shows how to convert the official SRN checkpoint"
    for argv in cmds:
        out = Path(os.path.expanduser(argv[argv.index("-o") + 1]))
        names = [ws.filename for ws in registry.get_spec("srn").weight_sets]
        assert out.name in names
        assert out.parent == weights.user_models_dir()


def test_convert_srn_says_when_the_app_will_not_find_the_file(tmp_path, capsys):
    from inpaint_gui.engine import tfckpt
    from tests.test_srn_outpaint import _small_tf_weights
    prefix = tfckpt.write_checkpoint(tmp_path / "ckpt" / "snap-80000", _small_tf_weights(cnum=8))
    user = weights.user_models_dir()
    user.mkdir(parents=True, exist_ok=True)

    rc = cli.main(["models", "convert-srn", prefix, "-o", str(user / "srn_celebahq.pt")])
    err = capsys.readouterr().err
    assert rc == 0
    assert "warning: the app looks for srn_celebahq256.pt" in err
    assert weights.weight_status(registry.get_spec("srn"))[0] == "starter"  # not the official set

    rc = cli.main(["models", "convert-srn", prefix, "-o", str(user / "srn_celebahq256.pt")])
    err = capsys.readouterr().err
    assert rc == 0 and "warning" not in err, err
    assert weights.weight_status(registry.get_spec("srn"))[0] == "official"


# ----------------------------------------------------------------------------- item 2: training

def test_readme_makes_the_training_folder_before_training():
    train = _readme_commands("inpaint train ")
    assert train
    data = train[0][train[0].index("--data") + 1]
    lines = README.splitlines()
    first_train = next(i for i, ln in enumerate(lines) if ln.strip().startswith("inpaint train "))
    before = "\n".join(lines[:first_train])
    assert f"inpaint data collect {data}" in before
    assert "make data" in README and "apt-get" in README


def test_train_without_the_data_folder_says_how_to_make_it(tmp_path, capsys):
    from inpaint_gui.training.cli_train import main_train
    missing = tmp_path / "train_pool"
    rc = main_train(["--arch", "aot", "--variant", "tiny", "--data", str(missing),
                     "--out", str(tmp_path / "run"), "--steps", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"inpaint data collect {missing}" in err and "make data" in err


def test_data_help_exits_0(capsys):
    assert cli.main(["data", "--help"]) == 0
    out = capsys.readouterr().out
    assert "collect OUT" in out and "apt-get" in out
    assert cli.main(["data"]) == 2
    assert "inpaint data --help" in capsys.readouterr().err


@pytest.fixture
def fake_root_apt(monkeypatch):
    """As root, with no package installed; commands are recorded, never run."""
    ran = []
    monkeypatch.setattr(collect, "deb_installed", lambda pkg: False)
    monkeypatch.setattr(collect.os, "geteuid", lambda: 0, raising=False)
    monkeypatch.setattr(collect, "_run", lambda cmd, log, cwd=None: ran.append(cmd) or True)
    return ran


def test_collect_shows_and_confirms_apt_get_first(fake_root_apt, capsys):
    logs = []
    asked = []
    assert collect.install_debs(["pkg-a", "pkg-b"], logs.append,
                                confirm=lambda q: asked.append(q) or False) is False
    assert fake_root_apt == [] and asked == ["Install them now? [y/N] "]
    text = "\n".join(logs)
    assert "apt-get install -y --no-install-recommends pkg-a pkg-b" in text and "root" in text
    assert "--yes" in text and "--skip-install" in text

    assert collect.install_debs(["pkg-a"], logs.append, confirm=lambda q: True) is True
    assert fake_root_apt == [["apt-get", "install", "-y", "--no-install-recommends", "pkg-a"]]


def test_collect_without_a_terminal_does_not_install_unless_told(fake_root_apt, tmp_path, capsys):
    base = ["collect", str(tmp_path / "pool"), "--no-download", "--root", str(tmp_path / "root")]
    collect.main_collect(base)  # pytest's stdin is not a terminal: nothing is installed
    assert not any(cmd[:2] == ["apt-get", "install"] for cmd in fake_root_apt)
    assert "apt-get install -y" in capsys.readouterr().out
    collect.main_collect(base + ["--yes"])
    assert any(cmd[:2] == ["apt-get", "install"] for cmd in fake_root_apt)
