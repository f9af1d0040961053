# Options of a recipe's run.sh, in the manner of Kaldi's utils/parse_options.sh.
#
#   stage=0; exp=exp/blstm; jobs=2          # defaults: every variable set before this line
#   path_opts="exp"                         # ... whose values are paths
#   . "$(dirname "$0")/../../scripts/parse_options.sh"
#   cd "$(dirname "$0")"
#
# `--some-name VALUE` (or `--some-name=VALUE`) sets some_name=VALUE, but only for a variable
# the recipe has already set: an unknown or misspelt option is an error, never a new
# variable. The values of the variables named in $path_opts are made absolute against the
# directory the recipe was started from, because recipes then change into their own folder
# (their defaults are relative to that folder). `--help` prints the comment block at the top
# of the recipe. Sourced, so it reads and consumes the recipe's own arguments.

_po_abs() { case "$1" in /*|"") printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help)
      # the leading comment block, without the #! line and the comment marks
      sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
      exit 0 ;;
    --*=*) _po_name=${1%%=*}; _po_val=${1#*=}; shift ;;
    --?*)
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 2; fi
      _po_name=$1; _po_val=$2; shift 2 ;;
    *) echo "$0: unexpected argument '$1' (options are --name VALUE; --help lists them)" >&2; exit 2 ;;
  esac
  _po_var=${_po_name#--}
  _po_var=${_po_var//-/_}
  if ! [[ $_po_var =~ ^[a-z][a-z0-9_]*$ ]] || [ "$_po_var" = path_opts ] || [ -z "${!_po_var+set}" ]; then
    echo "$0: unknown option $_po_name (--help lists them)" >&2; exit 2
  fi
  case " ${path_opts:-} " in
    *" $_po_var "*) _po_val=$(_po_abs "$_po_val") ;;
  esac
  printf -v "$_po_var" '%s' "$_po_val"
done
unset _po_name _po_val _po_var
unset -f _po_abs
