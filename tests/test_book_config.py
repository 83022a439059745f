"""The staged book configuration: launch buttons exactly when the repository's GitHub address is known."""

import subprocess

import pytest
import yaml

from advexp_book import reproduce
from advexp_lib.checks import InputError


def _git_repo(path, remote=None):
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if remote:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", remote], check=True)
    return path


@pytest.mark.parametrize(
    "remote, url",
    [
        ("git@github.com:owner/advexp.git", "https://github.com/owner/advexp"),
        ("https://github.com/owner/advexp.git", "https://github.com/owner/advexp"),
        ("https://github.com/owner/advexp", "https://github.com/owner/advexp"),
        ("ssh://git@github.com/owner/advexp.git", "https://github.com/owner/advexp"),
        ("/work/main", None),  # a clone of a local checkout, as CI's
        ("https://gitlab.com/owner/advexp.git", None),
        ("https://github.com/owner/advexp/extra", None),
        ("https://github.com/owner/", None),
        ("https://github.com//advexp", None),
        ("https://github.com/owner/advexp?x=1", None),
        ("https://github.com/owner/advexp/", "https://github.com/owner/advexp"),
        ("https://github.com/own-er/adv.exp.git", "https://github.com/own-er/adv.exp"),
        (None, None),
    ],
)
def test_repository_url_reads_the_origin_remote(tmp_path, remote, url):
    assert reproduce.repository_url(_git_repo(tmp_path, remote)) == url


def test_repository_url_of_a_folder_outside_git_is_none(tmp_path):
    assert reproduce.repository_url(tmp_path) is None


def test_staged_config_has_buttons_only_with_an_address(tmp_path):
    reproduce._stage_config(tmp_path, None, "main")
    plain = yaml.safe_load((tmp_path / "_config.yml").read_text())
    assert "launch_buttons" not in plain and plain["html"]["use_repository_button"] is False
    reproduce._stage_config(tmp_path, "https://github.com/owner/advexp", "dev")
    config = yaml.safe_load((tmp_path / "_config.yml").read_text())
    assert config["repository"] == {
        "url": "https://github.com/owner/advexp",
        "path_to_book": "",
        "branch": "dev",
    }
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["html"]["use_repository_button"] is True
    assert config["html"]["home_page_in_navbar"] is True  # the rest of html: kept
    assert {k: v for k, v in config.items() if k not in ("repository", "launch_buttons", "html")} == {
        k: v for k, v in plain.items() if k != "html"
    }


def test_current_branch_names_the_checked_out_one(tmp_path):
    repo = _git_repo(tmp_path)
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "-b", "book-fix"], check=True)
    assert reproduce.current_branch(repo) == "book-fix"
    assert reproduce.current_branch(tmp_path / "not-a-repo") == "main"


def test_build_book_refuses_an_address_that_is_not_a_github_repository(tmp_path):
    with pytest.raises(InputError, match="repository: expected https://github.com/OWNER/NAME"):
        reproduce.build_book(tmp_path, repository="git@gitlab.com:owner/advexp.git")
