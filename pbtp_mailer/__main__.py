from pbtp_mailer.cli import main

main(prog_name="pbtp-mailer")
