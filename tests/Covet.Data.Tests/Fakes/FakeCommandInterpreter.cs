using System.Globalization;
using System.Text.RegularExpressions;

namespace Covet.Data.Tests.Fakes;

/// <summary>
/// The fake's tiny, case-insensitive command language (surrounding whitespace and one trailing ';' are ignored):
/// <list type="bullet">
/// <item><c>SELECT &lt;integer&gt;</c> → one row, one column "?column?" (int, or long if it does not fit).</item>
/// <item><c>SELECT @p</c> / <c>SELECT :p</c> → one row, one column: the value of parameter p (DBNull if null).</item>
/// <item><c>SELECT * FROM numbers(&lt;n&gt;)</c> → one int column "n", rows 1..n.</item>
/// <item><c>SET name = value</c> / <c>SET name TO value</c> → session variable (quotes around value are stripped).</item>
/// <item><c>SHOW name</c> → one row, one string column "name": the value, or DBNull.</item>
/// <item><c>RESET name</c> → removes one session variable; <c>RESET ALL</c> → clears them.</item>
/// <item><c>DISCARD ALL</c> → clears them; inside a transaction throws FakeDbException 25001.</item>
/// <item><c>FAIL</c> → FakeDbException 42601 (query error; the connection stays open).</item>
/// <item><c>BREAK</c> → the connection is killed: FakeDbException 57P01, connection becomes Closed.</item>
/// <item><c>SLEEP &lt;ms&gt;</c> → waits on the server TimeProvider (cancellable), then like a non-query.</item>
/// <item>anything else → no result set, 0 rows affected.</item>
/// </list>
/// </summary>
internal static partial class FakeCommandInterpreter
{
    public static async ValueTask<FakeResult> RunAsync(
        FakeDbConnection connection,
        string commandText,
        IReadOnlyList<FakeDbParameter> parameters,
        TimeProvider timeProvider,
        bool async,
        CancellationToken cancellationToken)
    {
        string text = commandText.Trim();
        if (text.EndsWith(';'))
        {
            text = text[..^1].TrimEnd();
        }

        Match match;
        if ((match = SelectIntegerRegex().Match(text)).Success)
        {
            string literal = match.Groups["n"].Value;
            return int.TryParse(literal, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i)
                ? FakeResult.Scalar("?column?", typeof(int), i)
                : FakeResult.Scalar("?column?", typeof(long), long.Parse(literal, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture));
        }

        if ((match = SelectParameterRegex().Match(text)).Success)
        {
            string name = match.Groups["name"].Value;
            FakeDbParameter? parameter = parameters.FirstOrDefault(p => FakeDbParameterCollection.NamesEqual(p.ParameterName, name))
                ?? throw new FakeDbException($"fake: parameter '{name}' was not supplied", FakeDbException.SyntaxErrorState, isTransient: false);
            object value = parameter.Value ?? DBNull.Value;
            return FakeResult.Scalar("?column?", value is DBNull ? typeof(object) : value.GetType(), value);
        }

        if ((match = NumbersRegex().Match(text)).Success)
        {
            int count = int.Parse(match.Groups["n"].Value, CultureInfo.InvariantCulture);
            object[][] rows = Enumerable.Range(1, count).Select(n => new object[] { n }).ToArray();
            return new FakeResult(new[] { new FakeColumn("n", typeof(int)) }, rows, -1);
        }

        if ((match = SetRegex().Match(text)).Success)
        {
            connection.SetSessionVariable(match.Groups["name"].Value, Unquote(match.Groups["value"].Value.Trim()));
            return FakeResult.NonQuery;
        }

        if ((match = ShowRegex().Match(text)).Success)
        {
            string name = match.Groups["name"].Value;
            return FakeResult.Scalar(name, typeof(string), (object?)connection.GetSessionVariable(name) ?? DBNull.Value);
        }

        if (ResetAllRegex().IsMatch(text))
        {
            connection.ClearSession();
            return FakeResult.NonQuery;
        }

        if (DiscardAllRegex().IsMatch(text))
        {
            if (connection.InTransaction)
            {
                throw FakeDbException.DiscardInTransaction();
            }

            connection.ClearSession();
            return FakeResult.NonQuery;
        }

        if ((match = ResetRegex().Match(text)).Success)
        {
            connection.ResetSessionVariable(match.Groups["name"].Value);
            return FakeResult.NonQuery;
        }

        if (text.Equals("FAIL", StringComparison.OrdinalIgnoreCase))
        {
            throw FakeDbException.SyntaxError();
        }

        if (text.Equals("BREAK", StringComparison.OrdinalIgnoreCase))
        {
            throw connection.Break();
        }

        if ((match = SleepRegex().Match(text)).Success)
        {
            int ms = int.Parse(match.Groups["ms"].Value, CultureInfo.InvariantCulture);
            await FakeDelay.WaitAsync(TimeSpan.FromMilliseconds(ms), timeProvider, async, cancellationToken).ConfigureAwait(false);
            return FakeResult.NonQuery;
        }

        return FakeResult.NonQuery;
    }

    private static string Unquote(string value)
    {
        if (value.Length >= 2 && ((value[0] == '\'' && value[^1] == '\'') || (value[0] == '"' && value[^1] == '"')))
        {
            return value[1..^1];
        }

        return value;
    }

    [GeneratedRegex(@"^SELECT\s+(?<n>[+-]?\d+)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SelectIntegerRegex();

    [GeneratedRegex(@"^SELECT\s+[@:](?<name>\w+)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SelectParameterRegex();

    [GeneratedRegex(@"^SELECT\s+\*\s+FROM\s+numbers\s*\(\s*(?<n>\d+)\s*\)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex NumbersRegex();

    [GeneratedRegex(@"^SET\s+(?<name>[A-Za-z_][\w.]*)(?:\s*=\s*|\s+TO\s+)(?<value>.+)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline)]
    private static partial Regex SetRegex();

    [GeneratedRegex(@"^SHOW\s+(?<name>[A-Za-z_][\w.]*)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ShowRegex();

    [GeneratedRegex(@"^RESET\s+ALL$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ResetAllRegex();

    [GeneratedRegex(@"^DISCARD\s+ALL$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex DiscardAllRegex();

    [GeneratedRegex(@"^RESET\s+(?<name>[A-Za-z_][\w.]*)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ResetRegex();

    [GeneratedRegex(@"^SLEEP\s+(?<ms>\d+)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SleepRegex();
}
