#!/usr/bin/env python
"""Print a shell completion script (through shtab) for ./main.py and the sh/ scripts.

    python sh/completion.py bash > ~/.project-completion.bash      # once, then in ~/.bashrc:
    source ~/.project-completion.bash                               # (zsh: the same with `zsh`, after compinit)
    ./main.py fit --trainer.max_<TAB>    sh/run.py --all_<TAB>

main.py's options are the settings main.py reads for config/template.yaml (every ``--trainer.*``,
``--model.init_args.*``, ``--data.init_args.*``, ``--run.*`` ...), asked from jsonargparse once;
the sh/ scripts' come from their own parsers. Shells complete a command by its name, so call them
as ``./main.py`` and ``sh/run.py`` (they are executable), not through ``python``.
"""
import argparse
import subprocess
import sys

from _experiments import PROJECT_ROOT, ArgumentParser, UsageError, exit_on_usage_error, merged_configs
from runtime.run_folder import flatten

SUBCOMMANDS = ("fit", "validate", "test", "predict")
SHELLS = ("bash", "zsh", "tcsh")


def scripts() -> list:
    """The sh/ scripts a user calls (not the _library modules, nor this one)."""
    return sorted(path for path in (PROJECT_ROOT / "sh").glob("*.py")
                  if not path.name.startswith("_") and path.name != "completion.py")


def main_py_parser(template) -> argparse.ArgumentParser:
    """An argparse mirror of main.py: its subcommands with every setting of ``template`` as an option."""
    import shtab

    parser = argparse.ArgumentParser(prog="main.py")
    commands = parser.add_subparsers(dest="subcommand")
    configs = merged_configs([[subcommand, "-c", str(template)] for subcommand in SUBCOMMANDS])
    if any(config is None for config in configs):
        raise UsageError(f"main.py could not read {template}: run `python main.py fit -c {template} --print_config`")
    for subcommand, config in zip(SUBCOMMANDS, configs, strict=True):
        sub = commands.add_parser(subcommand, help=f"main.py {subcommand}")  # with help: shtab lists it
        sub.add_argument("-c", "--config", action="append").complete = shtab.FILE
        sub.add_argument("--print_config", nargs="?")
        for key in flatten(config):
            action = sub.add_argument(f"--{key}")
            if key == "ckpt_path" or key.endswith(("_dir", "_file", "_path")):
                action.complete = shtab.FILE
    return parser


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.add_path_argument("--template", default="config/template.yaml", help="config whose settings main.py offers")
    args = parser.parse_args(argv)
    import shtab

    parts = [shtab.complete(main_py_parser(args.template), shell=args.shell)]
    for script in scripts():
        printed = subprocess.run([sys.executable, str(script), "--print_completion", args.shell],
                                 capture_output=True, text=True, check=False)
        if printed.returncode != 0:
            raise UsageError(f"{script.name} --print_completion failed: {printed.stderr.strip()[-300:]}")
        parts.append(printed.stdout)
    print("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
