using Microsoft.Data.Sqlite;

namespace Covet.Data.Dashboard;

/// <summary>A small SQLite file of orders for the synthetic load to read and write.</summary>
internal static class SampleDatabase
{
    public static async Task CreateAsync(string connectionString)
    {
        await using var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount REAL NOT NULL);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
            INSERT INTO orders (customer, amount) SELECT 'customer ' || (i % 97), (i * 37 % 1000) / 10.0 FROM n;
            """;
        await command.ExecuteNonQueryAsync();
    }
}
