from emomusic.cli import main

main()
