using System.Collections.Concurrent;
using System.Reflection;
using System.Text;
using Covet.Data.EntityFrameworkCore.Tests.Matrix;

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>
/// Collects the outcome of every matrix cell (test method = row, test class = provider) and renders the README table.
/// Rows come from the test methods of <see cref="MatrixTests"/>, in declaration order, then the rows only one provider
/// has (test methods declared on its class, such as PostgreSQL's data-source type mappings); a cell that did not run,
/// or a provider without that row, is "n/a".
/// </summary>
internal static class MatrixReport
{
    public const string FileName = "ef-compatibility-matrix.md";

    /// <summary>A note starting with this marks an inconclusive cell as blocked (a known gap), not as not applicable.</summary>
    public const string BlockedPrefix = "BLOCKED: ";

    /// <summary>A note starting with this marks an inconclusive cell as failing the same way without Covet (the provider's limitation).</summary>
    public const string ProviderPrefix = "PROVIDER: ";

    private static readonly ConcurrentDictionary<(string Row, ProviderKind Provider), (UnitTestOutcome Outcome, string? Note)> Cells = new();

    public static void Record(ProviderKind provider, string row, UnitTestOutcome outcome, string? note) => Cells[(row, provider)] = (outcome, note);

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
        var providers = Enum.GetValues<ProviderKind>();
        var text = new StringBuilder();
        text.AppendLine("| Row | What it checks | " + string.Join(" | ", providers.Select(Title)) + " |");
        text.AppendLine("|---|---|" + string.Concat(providers.Select(_ => ":---:|")));
        var notes = new List<string>();
        foreach (var (row, description) in Rows)
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
        _ => provider.ToString(),
    };
}
