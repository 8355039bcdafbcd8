from videosavi.cli import run

run()
