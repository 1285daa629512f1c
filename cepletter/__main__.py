from cepletter.cli.main import main

main()
