"""What a newcomer reads works as written: the README's commands and the config
docstrings' commands parse, with their flags and configs, in the order the README gives
them, and every cross-reference in the docs and docstrings resolves."""
import argparse
import importlib
import pathlib
import re
import shlex

import pytest

from conftest import ROOT

LAUNCH_TOOLS = {"sweep": "experiments.sweep", "reproduce": "experiments.reproduce"}
NOT_OURS = ("pip", ".venv/bin/pip", ".venv/bin/tensorboard", "tensorboard", "rm", "cd",
            "git", "export", "bash")


def fenced_commands(path) -> list[str]:
  """The commands of a markdown file's ```bash blocks, comments and prompts removed."""
  text = pathlib.Path(path).read_text()
  commands = []
  for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S):
    for line in block.splitlines():
      line = re.sub(r"\s+#.*$", "", line).strip()
      if line and not line.startswith("#"):
        commands.append(line)
  return commands


def docstring_commands() -> list[tuple[str, str]]:
  """(config file, command) for each `python -m digitjax.main` line of a config docstring."""
  found = []
  for path in sorted((ROOT / "configs").glob("*.py")):
    doc = re.match(r'\s*"""(.*?)"""', path.read_text(), re.S)
    for line in (doc.group(1).splitlines() if doc else []):
      if line.strip().startswith("python -m digitjax.main"):
        found.append((path.name, line.strip()))
  return found


def as_main_argv(words) -> list[str] | None:
  """digitjax.main's argv for `./launch.sh CONFIG ...` or `python -m digitjax.main ...`."""
  if words[0] == "./launch.sh" and words[1].endswith(".py") or ".py:" in words[1]:
    return ["digitjax.main", f"--config={words[1]}", *words[2:]]
  if words[0] == "./launch.sh" and words[1].startswith("--mode="):
    return ["digitjax.main", *words[1:]]
  if words[:3] == ["python", "-m", "digitjax.main"]:
    return ["digitjax.main", *words[3:]]
  return None


class _Parsed(Exception):
  pass


def parse_tool(module: str, args: list[str], monkeypatch):
  """Runs the tool's main() until its argparse has parsed args, and no further."""
  original = argparse.ArgumentParser.parse_args

  def parse_then_stop(self, args=None, namespace=None):
    original(self, args, namespace)
    raise _Parsed

  monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
  command = importlib.import_module(module)
  if hasattr(command, "__path__"):  # a package: `python -m` runs its __main__
    command = importlib.import_module(f"{module}.__main__")
  with pytest.raises(_Parsed):
    command.main(args)


def check_main(argv, monkeypatch):
  """main.check_args(argv) as its own process would run it: ml_collections reads the
  --config.* overrides from sys.argv, so that is set too."""
  from absl import flags
  from digitjax import main

  flags.FLAGS.unparse_flags()
  monkeypatch.setattr("sys.argv", list(argv))
  try:
    main.check_args(argv)
  except SystemExit as e:
    pytest.fail(f"{' '.join(argv)} is refused (exit {e.code})")


def workdir_of(argv) -> str:
  from digitjax import config_files

  given = [a.split("=", 1)[1] for a in argv if a.startswith("--workdir=")]
  if not any(a.startswith("--config=") for a in argv):
    return given[-1]
  if given:
    return given[-1]
  spec = argv[1].split("=", 1)[1]
  path, _, variant = spec.partition(":")
  return "runs/" + config_files.from_file(str(ROOT / path), variant or None).name


def test_the_readmes_commands_parse_in_the_order_a_newcomer_meets_them(monkeypatch,
                                                                       tmp_path):
  """Each command parses with its flags and config; an eval or predict reads a workdir an
  earlier command of the README trained."""
  trained, checked = set(), 0
  for line in fenced_commands(ROOT / "README.md"):
    words = shlex.split(line)
    if words[0] in NOT_OURS or words[:2] == ["./launch.sh", "test"]:
      continue
    argv = as_main_argv(words)
    if argv is not None:
      check_main(argv, monkeypatch)
      workdir = workdir_of(argv)
      if "--mode=summary" in argv:  # looks at a config: reads no run, trains none
        pass
      elif any(a.startswith("--mode=") and a != "--mode=train" for a in argv):
        assert workdir in trained, f"`{line}` reads {workdir}, which no command above trains"
      else:
        trained.add(workdir)
    elif words[:2] == ["./launch.sh", "runs"]:  # run for real, on an empty runs/
      from experiments import list_runs
      (tmp_path / "runs").mkdir(exist_ok=True)
      monkeypatch.chdir(tmp_path)
      list_runs.main(words[2:])
      monkeypatch.chdir(ROOT)
    elif words[0] == "./launch.sh" and words[1] in LAUNCH_TOOLS:
      parse_tool(LAUNCH_TOOLS[words[1]], words[2:], monkeypatch)
    elif words[:2] == ["python", "-m"] and words[2].startswith("experiments."):
      parse_tool(words[2], words[3:], monkeypatch)
    else:
      pytest.fail(f"the README's `{line}` is a command this test does not know")
    checked += 1
  assert checked >= 8


@pytest.mark.parametrize("config_file,command", docstring_commands())
def test_each_config_docstrings_command_parses(config_file, command, monkeypatch):
  check_main(as_main_argv(shlex.split(command)), monkeypatch)


# --- cross-references ---------------------------------------------------------------------

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "experiments").rglob("*.md"))]  # results/ too: tables link notes
SOURCES = [p for d in ("digitjax", "configs", "experiments")  # tests name bad files
           for p in sorted((ROOT / d).rglob("*.py"))]
PATH_MENTION = re.compile(
    r"(?<![\w/.])((?:configs|digitjax|experiments|docs|tests)/[\w./-]*\w\.(?:py|md|json|csv|txt|sh))")


def slug(heading: str) -> str:
  """GitHub's anchor of a markdown heading."""
  text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
  return text.replace(" ", "-")


def anchors(path) -> set[str]:
  return {slug(h) for h in re.findall(r"^#+\s+(.*)$", path.read_text(), re.M)}


def test_every_markdown_link_resolves_to_a_file_and_heading():
  broken = []
  for doc in DOCS:
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
      if re.match(r"[a-z]+:", target):
        continue  # http(s), mailto
      path, _, anchor = target.partition("#")
      resolved = (doc.parent / path).resolve() if path else doc
      if not resolved.exists():
        broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
      elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
  assert broken == []


def test_every_file_the_docs_and_docstrings_name_exists():
  broken = []
  for path in DOCS + SOURCES:
    for mention in set(PATH_MENTION.findall(path.read_text())):
      if not (ROOT / mention).exists():
        broken.append(f"{path.relative_to(ROOT)}: {mention}")
  assert broken == []


def test_every_command_the_docs_and_docstrings_name_is_a_module():
  """`python -m experiments.x`: x runs (a module, or a package with a __main__)."""
  import importlib.util

  broken = []
  for path in DOCS + SOURCES + [ROOT / "launch.sh", *(ROOT / "experiments").glob("*.[st][hx]*")]:
    for name in set(re.findall(r"python3? -m ((?:experiments|digitjax)(?:\.\w+)+)",
                               path.read_text())):
      spec = importlib.util.find_spec(name)
      if spec is None or (spec.submodule_search_locations is not None
                          and importlib.util.find_spec(f"{name}.__main__") is None):
        broken.append(f"{path.relative_to(ROOT)}: python -m {name}")
  assert broken == []


def test_every_readme_section_a_text_cites_exists():
  """`README, Results`, `the README's "Speed" section`: the README has that heading."""
  headings = {h.strip().lower() for h in
              re.findall(r"^#+\s+(.*)$", (ROOT / "README.md").read_text(), re.M)}
  cited = re.compile(r"README(?:'s)?,?\s+\"?([A-Z][A-Za-z ]+?)\"?(?:\s+section|[).,;])")
  broken = []
  for path in DOCS + SOURCES:
    for name in cited.findall(path.read_text()):
      if name.strip().lower() not in headings:
        broken.append(f"{path.relative_to(ROOT)}: README section {name!r}")
  assert broken == []
