from cepletter.cli import main

main()
