using System.Collections;
using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Text;

namespace Covet.Data.ConformanceTests;

/// <summary>
/// The observable outcomes of one run, in order: each step's value or the type of the exception it threw, states and
/// StateChange events. Provider objects are rendered by what they are, not by their .NET type (a Covet connection and
/// an NpgsqlConnection are both "connection"), so two runs compare equal exactly when a user could not tell them apart.
/// </summary>
internal sealed class Outcomes
{
    private readonly List<(string Label, string Value)> _steps = [];

    public IReadOnlyList<(string Label, string Value)> Steps => _steps;

    /// <summary>Text unique to one run (its id, in file and application names), rendered as "&lt;run&gt;" so runs compare.</summary>
    public string? RunId { get; set; }

    public void Val(string label, object? value) => _steps.Add((label, Normalize(Render(value))));

    private string Normalize(string text) => RunId is null ? text : text.Replace(RunId, "<run>", StringComparison.Ordinal);

    public T? Try<T>(string label, Func<T> step)
    {
        try
        {
            var value = step();
            Val(label, value);
            return value;
        }
        catch (Exception e)
        {
            _steps.Add((label, Thrown(e)));
            return default;
        }
    }

    public bool Try(string label, Action step)
    {
        try
        {
            step();
            _steps.Add((label, "ok"));
            return true;
        }
        catch (Exception e)
        {
            _steps.Add((label, Thrown(e)));
            return false;
        }
    }

    public async Task<T?> TryAsync<T>(string label, Func<Task<T>> step)
    {
        try
        {
            var value = await step();
            Val(label, value);
            return value;
        }
        catch (Exception e)
        {
            _steps.Add((label, Thrown(e)));
            return default;
        }
    }

    public async Task<bool> TryAsync(string label, Func<Task> step)
    {
        try
        {
            await step();
            _steps.Add((label, "ok"));
            return true;
        }
        catch (Exception e)
        {
            _steps.Add((label, Thrown(e)));
            return false;
        }
    }

    /// <summary>Records every StateChange event of <paramref name="connection"/> in order with the other steps.</summary>
    public void Events(DbConnection connection, string name = "conn") =>
        connection.StateChange += (_, e) => _steps.Add(($"{name}.StateChange", $"{e.OriginalState}->{e.CurrentState}"));

    public static string Thrown(Exception e)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } a)
            e = a.InnerExceptions[0];
        return "throws " + e.GetType().FullName;
    }

    public static string Render(object? value) => value switch
    {
        null => "null",
        DBNull => "DBNull",
        string s => "\"" + s + "\"",
        byte[] bytes => "bytes:" + Convert.ToHexString(bytes),
        bool b => b ? "true" : "false",
        DateTime d => "DateTime:" + d.ToString("O", CultureInfo.InvariantCulture),
        IFormattable f and not Enum => value.GetType().Name + ":" + f.ToString(null, CultureInfo.InvariantCulture),
        Enum e => e.GetType().Name + "." + e,
        Type t => "type " + t.FullName,
        DbConnection c => "connection(" + c.State + ")",
        DbTransaction => "transaction",
        DbCommand => "command",
        DbBatch => "batch",
        DbDataReader r => "reader(IsClosed=" + r.IsClosed + ")",
        DataTable table => RenderTable(table),
        IEnumerable items => "[" + string.Join(", ", items.Cast<object?>().Select(Render)) + "]",
        _ => value.GetType().Name + ":" + value,
    };

    private static string RenderTable(DataTable table)
    {
        var text = new StringBuilder($"table {table.TableName} ({string.Join(",", table.Columns.Cast<DataColumn>().Select(c => c.ColumnName))}) rows={table.Rows.Count}");
        return text.ToString();
    }

    public override string ToString() => string.Join("\n", _steps.Select(s => $"  {s.Label} = {s.Value}"));
}
