from paradarum.cli import main

main()
