import subprocess
import sys

import pytest

from tests.conftest import REPO, child_env

sys.path.insert(0, str(REPO))
import app  # noqa: E402


@pytest.mark.parametrize(
    "host,share,auth,insecure,refused",
    [
        ("127.0.0.1", False, None, False, False),
        ("localhost", False, None, False, False),
        ("0.0.0.0", False, None, False, True),
        ("0.0.0.0", False, ("u", "p"), False, False),
        ("0.0.0.0", False, None, True, False),
        ("127.0.0.1", True, None, False, True),
        ("127.0.0.1", True, ("u", "p"), False, False),
    ],
)
def test_exposure_policy(host, share, auth, insecure, refused):
    assert bool(app.check_exposure(host, share, auth, insecure)) is refused


def test_defaults_are_safe():
    args = app.parse_args([])
    assert args.host == "127.0.0.1" and not args.share and args.auth is None


@pytest.mark.parametrize("value", ["nopassword", ":p", "u:"])
def test_bad_auth_value(value):
    with pytest.raises(SystemExit):
        app.parse_auth(value)


def test_public_bind_without_auth_is_refused_by_the_real_launcher(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "app.py",
            "--host",
            "0.0.0.0",
            "--no-browser",
            "--workspace",
            str(tmp_path / "ws"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert out.returncode == 2
    assert "without a password" in out.stderr and "--auth" in out.stderr
    assert not (tmp_path / "ws").exists()  # refused before touching anything
