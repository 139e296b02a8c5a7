from imgscope.cli import run

run()
