from fpreplay.replay.cli import entry

entry()
