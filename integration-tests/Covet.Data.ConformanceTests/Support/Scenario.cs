using System.Data.Common;

namespace Covet.Data.ConformanceTests;

/// <summary>
/// One scenario, written once as a function over a <see cref="Run"/>: it runs on the provider's own pool and through
/// Covet, and the two runs' <see cref="Outcomes"/> must be equal, step by step.
/// </summary>
internal sealed class Scenario
{
    private readonly List<Deliberate> _deliberate = [];

    public Scenario(string name, Func<Run, Task> body)
    {
        Name = name;
        Body = body;
    }

    public string Name { get; }
    public Func<Run, Task> Body { get; }
    public TargetKind[] Targets { get; private set; } = Covet.Data.ConformanceTests.Targets.All;
    public PathKind[] Paths { get; private set; } = [PathKind.Factory, PathKind.DataSource];

    /// <summary>Connections in each pool (2 when the scenario holds two connections at once).</summary>
    public int PoolSize { get; private set; } = 1;

    public IReadOnlyList<Deliberate> DeliberateDifferences => _deliberate;

    public Scenario On(params TargetKind[] targets)
    {
        Targets = targets;
        return this;
    }

    public Scenario OnlyPath(PathKind path)
    {
        Paths = [path];
        return this;
    }

    public Scenario Pool(int size)
    {
        PoolSize = size;
        return this;
    }

    /// <summary>
    /// Steps (by label prefix) whose outcome differs on purpose on <paramref name="targets"/>: the README section
    /// "Differences from the provider" gives <paramref name="reason"/>. Every other step must still be equal.
    /// </summary>
    public Scenario Differs(string labelPrefix, string reason, params TargetKind[] targets)
    {
        _deliberate.Add(new Deliberate(labelPrefix, reason, targets.Length == 0 ? Covet.Data.ConformanceTests.Targets.All : targets));
        return this;
    }

    public Deliberate? DeliberateFor(TargetKind target, string label) =>
        _deliberate.FirstOrDefault(d => d.Targets.Contains(target) && label.StartsWith(d.LabelPrefix, StringComparison.Ordinal));

    public static Scenario Sync(string name, Action<Run> body) => new(name, r => { body(r); return Task.CompletedTask; });

    public static Scenario Async(string name, Func<Run, Task> body) => new(name, body);

    public override string ToString() => Name;
}

internal sealed record Deliberate(string LabelPrefix, string Reason, TargetKind[] Targets);

/// <summary>What a scenario body gets: the outcomes to record into, the connection source, and small SQL helpers per target.</summary>
internal sealed class Run
{
    private readonly List<IDisposable> _owned = [];

    public Run(Source source)
    {
        S = source;
        R.RunId = source.RunId;
    }

    public Outcomes R { get; } = new();
    public Source S { get; }
    public TargetKind T => S.Target;

    /// <summary>A closed connection from the row's path, disposed when the run ends.</summary>
    public DbConnection New()
    {
        var connection = S.New();
        _owned.Add(connection);
        return connection;
    }

    public DbConnection NewWith(string connectionString)
    {
        var connection = S.NewWith(connectionString);
        _owned.Add(connection);
        return connection;
    }

    public DbConnection Open()
    {
        var connection = New();
        connection.Open();
        return connection;
    }

    public T Own<T>(T disposable) where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    public DbCommand Command(DbConnection connection, string sql, DbTransaction? transaction = null)
    {
        var command = Own(connection.CreateCommand());
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }

    public int Exec(DbConnection connection, string sql, DbTransaction? transaction = null) => Command(connection, sql, transaction).ExecuteNonQuery();

    public object? Scalar(DbConnection connection, string sql, DbTransaction? transaction = null) => Command(connection, sql, transaction).ExecuteScalar();

    /// <summary>Creates a table (id int primary key, name) unique to this run on <paramref name="connection"/> and returns its name.</summary>
    public string CreateTable(DbConnection connection, string name = "t")
    {
        var table = S.Table(name);
        Exec(connection, $"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(50))");
        return table;
    }

    /// <summary>The row count of <paramref name="table"/> as seen by <paramref name="connection"/>, or the exception type.</summary>
    public void Count(string label, DbConnection connection, string table) =>
        R.Try(label, () => Convert.ToInt64(Scalar(connection, $"SELECT COUNT(*) FROM {table}")));

    public string Sleep(int seconds) => T switch
    {
        TargetKind.Pg => $"SELECT pg_sleep({seconds})",
        TargetKind.MySql => $"SELECT SLEEP({seconds})",
        _ => throw new NotSupportedException("SQLite has no sleep"),
    };

    public string CreateTemp(string name) => T == TargetKind.MySql ? $"CREATE TEMPORARY TABLE {name} (id INT)" : $"CREATE TEMP TABLE {name} (id INT)";

    public void DisposeOwned()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            try
            {
                _owned[i].Dispose();
            }
            catch (Exception)
            {
                // cleanup after the outcomes were recorded: a scenario may leave objects in states whose dispose throws
            }
        }
    }
}
