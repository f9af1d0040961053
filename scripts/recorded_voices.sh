# Recorded English speakers from Debian's non-free and contrib sections
# (scripts/install_tts.sh installs them), shared by the recipes so that their training and
# held-out speakers stay the same lists. Sourced after the recipe's cd into its folder.
#
# MBROLA diphone voices through espeak-ng (us1/us3: American; de1-en ...: English read with
# German, French, Dutch, Hungarian, Polish, Swedish, Romanian, Afrikaans speakers' diphones)
# and Pico's en-US; 8 men, 7 women. Seven others (4 men, 3 women) are held out as test_c.
diphone_train="mbrola:us1 mbrola:us3 mbrola:de1-en mbrola:de2-en mbrola:de3-en mbrola:de4-en mbrola:de5-en \
mbrola:fr1-en mbrola:nl2-en mbrola:hu1-en mbrola:pl1-en mbrola:sw1-en mbrola:ro1-en mbrola:af1-en pico:en-US"
# Six more recorded speakers from there: RHVoice's bdl and clb (CMU ARCTIC, American),
# evgeniy-eng and lyubov (Russian speakers of English), festival's rab and don (British).
# (RHVoice's alan is AWB, a test speaker: never used here.)
more_train="rhvoice:bdl rhvoice:clb rhvoice:evgeniy-eng rhvoice:lyubov festival:rab_diphone festival:don_diphone"
test_c_voices="mbrola:us2 mbrola:en1 mbrola:de6-en mbrola:fr4-en mbrola:sw2-en mbrola:gr2-en pico:en-GB"
