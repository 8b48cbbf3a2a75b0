"""Portfolio files with tax lots: a [tax] table, [[holdings.lots]] tables, a lots CSV named by the
file (or given by the caller), YAML alike; bad CSV rows are refused naming file, row and column."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from finwiz.cli._portfolio_file import load_lots_csv, load_portfolio_file, parse_portfolio_text
from finwiz.errors import InvalidPortfolioError

TOML = """\
cash = 5000.0
lots = "lots/acct-lots.csv"

[tax]
as_of = 2024-06-28
short_term_rate = 0.35
long_term_rate = 0.15
max_realized_gain = 2000.0
tax_weight = 0.5

[[tax.recent_sales]]
symbol = "jnj"
date = 2024-06-10
shares = 5
loss = 120.0

[[tax.recent_purchases]]
symbol = "AAPL"
date = "2024-06-20"
shares = 3
lot_id = "AAPL#2"

[[holdings]]
symbol = "AAPL"

[[holdings.lots]]
shares = 100
cost_basis = 120.5
acquired = 2019-03-01
lot_id = "A-1"

[[holdings.lots]]
shares = 50
cost_basis = 190.0
acquired = "2024-01-15"

[[holdings]]
symbol = "MSFT"
shares = 20

[target_weights]
AAPL = 0.4
MSFT = 0.3
JNJ = 0.25
"""

LOTS_CSV = """\
symbol,shares,cost_basis,acquired,lot_id
MSFT,12,250.0,2020-05-01,M-1
msft ,8,400.0,2024-03-01,
JNJ,40,160.0,2022-01-10,J-1
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The TOML account and its lots CSV, read from another working directory."""
    write(tmp_path, "lots/acct-lots.csv", LOTS_CSV)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the CSV is found relative to the file, not the working directory
    return write(tmp_path, "acct.toml", TOML)


def test_toml_with_tax_table_lot_tables_and_a_lots_csv(account: Path) -> None:
    config = load_portfolio_file(account)
    assert config.shares_by_symbol() == {"AAPL": 150.0, "MSFT": 20.0, "JNJ": 40.0}
    aapl, msft, jnj = config.holdings
    assert [(x.lot_id, x.shares, x.cost_basis, x.acquired) for x in aapl.lots] == [
        ("A-1", 100.0, 120.5, date(2019, 3, 1)),
        ("AAPL#2", 50.0, 190.0, date(2024, 1, 15)),
    ]
    assert [(x.lot_id, x.shares, x.cost_basis, x.acquired) for x in msft.lots] == [
        ("M-1", 12.0, 250.0, date(2020, 5, 1)),
        ("MSFT#2", 8.0, 400.0, date(2024, 3, 1)),
    ]
    assert [x.lot_id for x in jnj.lots] == ["J-1"]
    tax = config.tax
    assert tax is not None
    assert (tax.as_of, tax.short_term_rate, tax.long_term_rate) == (date(2024, 6, 28), 0.35, 0.15)
    assert (tax.max_realized_gain, tax.tax_weight) == (2000.0, 0.5)
    assert [(s.symbol, s.date, s.shares, s.loss) for s in tax.recent_sales] == [("JNJ", date(2024, 6, 10), 5.0, 120.0)]
    assert [(p.symbol, p.date, p.lot_id) for p in tax.recent_purchases] == [("AAPL", date(2024, 6, 20), "AAPL#2")]


def test_the_callers_lots_csv_replaces_the_files(account: Path, tmp_path: Path) -> None:
    other = write(
        tmp_path, "other.csv", "symbol,shares,cost_basis,acquired\nMSFT,20,99.0,2018-01-02\nJNJ,1,5,2020-01-01\n"
    )
    config = load_portfolio_file(account, lots=other)
    assert [(x.lot_id, x.cost_basis) for x in config.holdings[1].lots] == [("MSFT#1", 99.0)]
    assert config.shares_by_symbol()["JNJ"] == 1.0


def test_yaml_alike(tmp_path: Path) -> None:
    write(tmp_path, "lots.csv", "symbol,shares,cost_basis,acquired\nBBB,7,12.5,2023-12-01\n")
    text = """\
cash: 100.0
lots: lots.csv
tax:
  as_of: 2024-06-28
  short_term_rate: 0.3
  long_term_rate: 0.1
  recent_sales:
    - {symbol: AAA, date: 2024-06-01, shares: 2, loss: 10.0}
holdings:
  - symbol: AAA
    lots:
      - {shares: 3, cost_basis: 10.0, acquired: 2020-01-01}
      - {shares: 2, cost_basis: 11.0, acquired: "2024-05-01", lot_id: X}
target_weights: {AAA: 0.5, BBB: 0.4}
"""
    config = load_portfolio_file(write(tmp_path, "p.yaml", text))
    assert config.shares_by_symbol() == {"AAA": 5.0, "BBB": 7.0}
    assert [x.lot_id for x in config.holdings[0].lots] == ["AAA#1", "X"]
    assert config.holdings[0].lots[1].acquired == date(2024, 5, 1)
    assert config.holdings[1].lots[0].acquired == date(2023, 12, 1)
    assert config.tax is not None
    assert config.tax.recent_sales[0].date == date(2024, 6, 1)


def test_lots_without_tax_settings_are_kept() -> None:
    text = '[[holdings]]\nsymbol = "AAA"\n[[holdings.lots]]\nshares = 4\ncost_basis = 1.0\nacquired = 2020-01-01\n'
    config = parse_portfolio_text(text + "[target_weights]\nAAA = 0.5\n", "toml")
    assert config.tax is None
    assert config.holdings[0].shares == 4.0


def test_csv_lots_and_given_shares_must_agree(tmp_path: Path) -> None:
    write(tmp_path, "lots.csv", LOTS_CSV)
    text = TOML.replace('lots = "lots/acct-lots.csv"', 'lots = "lots.csv"').replace("shares = 20", "shares = 21")
    with pytest.raises(InvalidPortfolioError) as caught:
        load_portfolio_file(write(tmp_path, "acct.toml", text))
    message = str(caught.value)
    assert "acct.toml" in message
    assert "lots.csv rows 2, 3" in message
    assert "lots of MSFT hold 20 shares, not its 21" in message
    assert caught.value.symbol == "MSFT"


def test_a_lot_after_as_of_in_the_csv_points_at_its_row(account: Path, tmp_path: Path) -> None:
    write(tmp_path, "lots/acct-lots.csv", LOTS_CSV.replace("2022-01-10", "2024-07-01"))
    with pytest.raises(InvalidPortfolioError, match=r"acct-lots\.csv row 4\).*lot J-1 of JNJ.*after as_of"):
        load_portfolio_file(account)


def test_lots_given_twice_are_refused(account: Path, tmp_path: Path) -> None:
    write(tmp_path, "lots/acct-lots.csv", LOTS_CSV + "AAPL,150,1.0,2020-01-01,\n")
    with pytest.raises(InvalidPortfolioError, match=r"lots of AAPL are given twice.*row 5") as caught:
        load_portfolio_file(account)
    assert caught.value.symbol == "AAPL"


def test_a_missing_lots_file_and_a_bad_lots_key_are_named(account: Path, tmp_path: Path) -> None:
    (tmp_path / "lots" / "acct-lots.csv").unlink()
    with pytest.raises(InvalidPortfolioError, match=r"acct-lots\.csv: no such lots file"):
        load_portfolio_file(account)
    with pytest.raises(InvalidPortfolioError, match="lots must be the path of a lots CSV") as caught:
        parse_portfolio_text("lots = 3\n[target_weights]\nA = 0.5\n", "toml", source="p.toml")
    assert caught.value.field == "lots"


def test_a_position_without_lots_in_a_tax_aware_file_is_named(tmp_path: Path) -> None:
    text = TOML.replace('lots = "lots/acct-lots.csv"\n', "")
    with pytest.raises(InvalidPortfolioError, match=r"acct\.toml.*MSFT has no lots") as caught:
        load_portfolio_file(write(tmp_path, "acct.toml", text))
    assert caught.value.symbol == "MSFT"


HEADER = "symbol,shares,cost_basis,acquired,lot_id\n"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("symbol,shares,acquired\nA,1,2020-01-01\n", r"row 1: missing column cost_basis"),
        ("symbol,quantity\nA,1\n", r"row 1: missing columns shares, cost_basis, acquired"),
        ("symbol,shares,cost_basis,acquired,price\nA,1,2,2020-01-01,3\n", r"row 1, column 5: unknown column 'price'"),
        ("symbol,shares,cost_basis,acquired,shares\nA,1,2,2020-01-01,3\n", r"row 1: column 'shares' appears twice"),
        (HEADER + "A,1,2,2020-01-01,a\nB,1,2,2020-01-01\n", r"row 3: 4 cells for 5 columns"),
        (HEADER + "A,1,2,2020-01-01,\n,1,2,2020-01-01,\n", r"row 3, column symbol: empty symbol"),
        (HEADER + "A,ten,2,2020-01-01,\n", r"row 2, column shares: 'ten' is not a number \(A\)"),
        (HEADER + "A,0,2,2020-01-01,\n", r"row 2, column shares: .*greater than 0 \(A\)"),
        (HEADER + "A,-3,2,2020-01-01,\n", r"row 2, column shares: .*greater than 0 \(A\)"),
        (HEADER + "A,1,,2020-01-01,\n", r"row 2, column cost_basis: empty \(A\)"),
        (HEADER + "A,1,-2.5,2020-01-01,\n", r"row 2, column cost_basis: .*greater than or equal to 0 \(A\)"),
        (HEADER + "A,1,nan,2020-01-01,\n", r"row 2, column cost_basis: .*not a finite number \(A\)"),
        (HEADER + "\nA,1,2,2020-01-01,\n\nB,1,inf,2020-01-01,\n", r"row 5, column cost_basis: .*not a finite"),
        (HEADER + "A,1,2,01/02/2020,\n", r"row 2, column acquired: '01/02/2020' is not an ISO date .*\(A\)"),
        (HEADER + "A,1,2,2020-02-30,\n", r"row 2, column acquired: '2020-02-30' is not a date: .*\(A\)"),
        (HEADER + 'A,1,2,2020-01-01,"two\nlines"\nB,x,2,2020-01-01,\n', r"row 4, column shares: 'x'"),
        (HEADER + "CASH,1,2,2020-01-01,\n", r"row 2, column symbol: .*reserved"),
    ],
)
def test_bad_csv_rows_name_file_row_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, "bad-lots.csv", text)
    with pytest.raises(InvalidPortfolioError, match=r"bad-lots\.csv, " + where):
        load_lots_csv(path)
    # ... and the same through a portfolio file and through the caller's override
    file = write(tmp_path, "p.toml", 'lots = "bad-lots.csv"\n[target_weights]\nA = 0.5\n')
    with pytest.raises(InvalidPortfolioError, match=r"bad-lots\.csv, " + where):
        load_portfolio_file(file)
    with pytest.raises(InvalidPortfolioError, match=r"bad-lots\.csv, " + where):
        parse_portfolio_text("[target_weights]\nA = 0.5\n", "toml", lots=path)


def test_csv_reading_details(tmp_path: Path) -> None:
    # A byte-order mark, upper-case headers with spaces, columns in any order, blank lines.
    text = "\ufeffAcquired, Symbol ,SHARES,cost_basis\n\n2021-01-04,aaa,2.5,10\n2021-02-01,AAA,1,11\n\n"
    lots = load_lots_csv(write(tmp_path, "l.csv", text))
    assert list(lots.lots) == ["AAA"]
    assert [(x.shares, x.cost_basis, x.acquired) for x in lots.lots["AAA"]] == [
        (2.5, 10.0, date(2021, 1, 4)),
        (1.0, 11.0, date(2021, 2, 1)),
    ]
    assert lots.rows_of("AAA") == "rows 3, 4"
    assert lots.rows_of("ZZZ") == ""


def test_the_readme_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Tax lots in portfolio files, the CLI and the report", 1)[1].split("\n## ", 1)[0]
    toml = section.split("```toml\n", 1)[1].split("```", 1)[0]
    lots = section.split("```csv\n", 1)[1].split("```", 1)[0]
    write(tmp_path, "lots.csv", lots)
    config = load_portfolio_file(write(tmp_path, "acct.toml", toml))
    assert config.shares_by_symbol() == {"AAPL": 150.0, "MSFT": 20.0, "JNJ": 40.0}
    assert [x.lot_id for x in config.holdings[0].lots] == ["A-1", "AAPL#2"]
    assert [x.lot_id for x in config.holdings[1].lots] == ["M-1", "MSFT#2"]
    assert config.tax is not None
    assert config.tax.max_realized_gain == 2000.0
    bad = write(tmp_path, "bad.csv", lots.replace("160.0", "16O.0"))
    with pytest.raises(
        InvalidPortfolioError, match=r"bad\.csv, row 4, column cost_basis: '16O\.0' is not a number \(JNJ\)"
    ):
        load_portfolio_file(tmp_path / "acct.toml", lots=bad)
