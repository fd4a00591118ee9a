from hiveq.cli.main import main

main()
