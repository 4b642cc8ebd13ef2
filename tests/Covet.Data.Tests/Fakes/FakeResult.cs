namespace Covet.Data.Tests.Fakes;

/// <summary>A column of a <see cref="FakeResult"/>.</summary>
public sealed record FakeColumn(string Name, Type Type);

/// <summary>The in-memory outcome of one command: a result set (possibly with no columns) and a row count.</summary>
public sealed class FakeResult
{
    public FakeResult(IReadOnlyList<FakeColumn> columns, IReadOnlyList<object[]> rows, int recordsAffected)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(rows);
        Columns = columns;
        Rows = rows;
        RecordsAffected = recordsAffected;
    }

    /// <summary>The result set's columns (empty for a command that returns no result set).</summary>
    public IReadOnlyList<FakeColumn> Columns { get; }

    /// <summary>The rows; each has one value per column, <see cref="DBNull.Value"/> for NULL.</summary>
    public IReadOnlyList<object[]> Rows { get; }

    /// <summary>What ExecuteNonQuery returns: -1 for queries, 0 otherwise.</summary>
    public int RecordsAffected { get; }

    /// <summary>No result set, 0 rows affected.</summary>
    public static FakeResult NonQuery { get; } = new(Array.Empty<FakeColumn>(), Array.Empty<object[]>(), 0);

    /// <summary>One column, one row.</summary>
    public static FakeResult Scalar(string columnName, Type type, object value) =>
        new(new[] { new FakeColumn(columnName, type) }, new[] { new[] { value } }, -1);
}
