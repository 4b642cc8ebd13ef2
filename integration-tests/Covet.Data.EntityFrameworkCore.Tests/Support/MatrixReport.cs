using System.Collections.Concurrent;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Covet.Data.EntityFrameworkCore.Tests.Matrix;

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>
/// Collects the outcome of every matrix cell (test method = row, test class = provider) and renders the README table.
/// Rows come from the test methods of <see cref="MatrixTests"/>, in declaration order, then the rows only one provider
/// has (test methods declared on its class, such as PostgreSQL's data-source type mappings); a cell that did not run,
/// or a provider without that row, is "n/a". Only providers with at least one cell get a column.
/// </summary>
/// <remarks>
/// Shared by the EF Core 10 test project and the Pomelo (EF Core 9) one, which run in separate processes: each writes its
/// own cells to <see cref="CellsFileName"/>, and a run given another run's cells file in <see cref="MergeVariable"/>
/// (matrix.sh does that) renders one table with the columns of both.
/// </remarks>
internal static class MatrixReport
{
    public const string FileName = "ef-compatibility-matrix.md";

    /// <summary>This run's own cells (JSON), beside the Markdown.</summary>
    public const string CellsFileName = "ef-compatibility-cells.json";

    /// <summary>Path of another run's <see cref="CellsFileName"/> whose cells join this run's table.</summary>
    public const string MergeVariable = "COVET_EF_MATRIX_MERGE";

    /// <summary>A note starting with this marks an inconclusive cell as blocked (a known gap), not as not applicable.</summary>
    public const string BlockedPrefix = "BLOCKED: ";

    /// <summary>A note starting with this marks an inconclusive cell as failing the same way without Covet (the provider's limitation).</summary>
    public const string ProviderPrefix = "PROVIDER: ";

    private static readonly ConcurrentDictionary<(string Row, ProviderKind Provider), (UnitTestOutcome Outcome, string? Note)> Cells = new();

    // Rows only another run has (its provider-only rows), with their descriptions.
    private static readonly List<(string Row, string Description)> MergedRows = [];

    public static void Record(ProviderKind provider, string row, UnitTestOutcome outcome, string? note) => Cells[(row, provider)] = (outcome, note);

    /// <summary>
    /// At the end of the run: writes this run's cells, merges another run's (<see cref="MergeVariable"/>), and writes and
    /// prints the Markdown table. A merge file that is named but missing fails the run.
    /// </summary>
    public static void WriteAtEnd()
    {
        if (Cells.IsEmpty)
            return;
        var cellsPath = Path.Combine(AppContext.BaseDirectory, CellsFileName);
        var descriptions = Rows.ToDictionary(r => r.Row, r => r.Description);
        File.WriteAllText(cellsPath, JsonSerializer.Serialize(Cells
            .Select(c => new CellRecord(c.Key.Provider.ToString(), c.Key.Row, descriptions.GetValueOrDefault(c.Key.Row, ""), c.Value.Outcome.ToString(), c.Value.Note))
            .OrderBy(c => c.Provider, StringComparer.Ordinal).ThenBy(c => c.Row, StringComparer.Ordinal)
            .ToList()));
        if (Environment.GetEnvironmentVariable(MergeVariable) is { Length: > 0 } merge)
        {
            if (!File.Exists(merge))
                throw new InvalidOperationException($"${MergeVariable} names {merge}, which does not exist: run the other matrix project first (matrix.sh does).");
            foreach (var cell in JsonSerializer.Deserialize<List<CellRecord>>(File.ReadAllText(merge))!)
            {
                var provider = Enum.Parse<ProviderKind>(cell.Provider);
                Cells.TryAdd((cell.Row, provider), (Enum.Parse<UnitTestOutcome>(cell.Outcome), cell.Note));
                if (!descriptions.ContainsKey(cell.Row) && MergedRows.All(r => r.Row != cell.Row))
                    MergedRows.Add((cell.Row, cell.Description));
            }
        }
        var markdown = ToMarkdown()!;
        var path = Path.Combine(AppContext.BaseDirectory, FileName);
        File.WriteAllText(path, markdown);
        Console.WriteLine(markdown);
        Console.WriteLine($"(written to {path}; this run's cells to {cellsPath})");
    }

    private sealed record CellRecord(string Provider, string Row, string Description, string Outcome, string? Note);

    /// <summary>The rows in declaration order (shared rows, then provider-only rows), with the description of their [Description] attribute.</summary>
    public static IReadOnlyList<(string Row, string Description)> Rows =>
        typeof(MatrixTests).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(MatrixTests)))
            .OrderBy(t => t.MetadataToken)
            .Prepend(typeof(MatrixTests))
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                .Where(m => m.GetCustomAttribute<TestMethodAttribute>() is not null)
                .OrderBy(m => m.MetadataToken))
            .Select(m => (m.Name, m.GetCustomAttribute<DescriptionAttribute>()?.Description ?? ""))
            .DistinctBy(r => r.Name)
            .ToList();

    public static string? ToMarkdown()
    {
        if (Cells.IsEmpty)
            return null;
        var providers = Enum.GetValues<ProviderKind>().Where(p => Cells.Keys.Any(k => k.Provider == p)).ToList();
        var text = new StringBuilder();
        text.AppendLine("| Row | What it checks | " + string.Join(" | ", providers.Select(Title)) + " |");
        text.AppendLine("|---|---|" + string.Concat(providers.Select(_ => ":---:|")));
        var notes = new List<string>();
        foreach (var (row, description) in Rows.Concat(MergedRows))
        {
            text.Append("| `").Append(row).Append("` | ").Append(description).Append(" |");
            foreach (var provider in providers)
            {
                (UnitTestOutcome? Outcome, string? Note) cell = Cells.TryGetValue((row, provider), out var result) ? (result.Outcome, result.Note) : (null, null);
                var mark = cell.Outcome switch
                {
                    null => "n/a",
                    UnitTestOutcome.Passed when cell.Note?.StartsWith(BlockedPrefix, StringComparison.Ordinal) == true => "⛔ fails loudly (needs core change)",
                    UnitTestOutcome.Passed when cell.Note?.StartsWith(ProviderPrefix, StringComparison.Ordinal) == true => "⚠️ provider (same without Covet)",
                    UnitTestOutcome.Passed => "✅ pass",
                    _ => "❌ " + cell.Outcome.ToString()!.ToLowerInvariant(),
                };
                if (cell.Note is { } note)
                {
                    notes.Add($"{Title(provider)} `{row}`: {StripPrefix(note)}");
                    mark += $" [{notes.Count}]";
                }
                text.Append(' ').Append(mark).Append(" |");
            }
            text.AppendLine();
        }
        if (notes.Count > 0)
        {
            text.AppendLine();
            for (var i = 0; i < notes.Count; i++)
                text.AppendLine($"[{i + 1}] {notes[i]}");
        }
        return text.ToString();
    }

    private static string StripPrefix(string note) =>
        note.StartsWith(BlockedPrefix, StringComparison.Ordinal) ? note[BlockedPrefix.Length..]
        : note.StartsWith(ProviderPrefix, StringComparison.Ordinal) ? note[ProviderPrefix.Length..]
        : note;

    private static string Title(ProviderKind provider) => provider switch
    {
        ProviderKind.Postgres => "PostgreSQL (Npgsql EF 10)",
        ProviderKind.Sqlite => "SQLite (EF Core SQLite 10)",
        ProviderKind.MySql => "MariaDB (Oracle MySql.EntityFrameworkCore 10)",
        ProviderKind.PomeloMySql => "MariaDB (Pomelo 9, EF Core 9)",
        _ => provider.ToString(),
    };
}
