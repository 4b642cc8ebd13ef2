namespace Covet.Data.IntegrationTests;

internal static class TestOptions
{
    /// <summary>
    /// Production defaults, except an acquire timeout short enough that a hang fails a test quickly, and no demand-driven
    /// sizing: tests count the pool's connections on the server, and a spare warmed in the background would make those
    /// counts depend on timing. (Tests that must hold with the production default turn it back on.)
    /// </summary>
    public static CovetPoolOptions Default(int maxPoolSize = 10) => new()
    {
        MaxPoolSize = maxPoolSize,
        AcquireTimeout = TimeSpan.FromSeconds(15),
        AutoScale = false,
    };
}

/// <summary>A SQLite database in a temp file, deleted (with its journal) on dispose.</summary>
internal sealed class SqliteFile : IDisposable
{
    public SqliteFile(string label)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"covet-it-{label}-{Guid.NewGuid():N}.db");
        ConnectionString = $"Data Source={Path}";
    }

    public string Path { get; }
    public string ConnectionString { get; }

    /// <summary>Another temp file path for ATTACH, deleted with this one.</summary>
    public string Sibling(string suffix) => Path + "." + suffix;

    public void Dispose()
    {
        foreach (var file in Directory.GetFiles(System.IO.Path.GetDirectoryName(Path)!, System.IO.Path.GetFileName(Path) + "*"))
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException e)
            {
                Console.WriteLine($"warning: could not delete {file}: {e.Message}");
            }
        }
    }
}
