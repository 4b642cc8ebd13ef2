using System.Data.Common;

namespace Covet.Data.Dashboard;

/// <summary>The example's deliberate bug: a connection that is opened and never closed.</summary>
internal static class Leak
{
    // Held in a static so the garbage collector cannot recover it (Covet would give the slot back and report it).
    private static DbConnection? _leaked;

    public static void OpenAndForget(CovetDataSource orders)
    {
        var connection = orders.CreateConnection();
        connection.Open();
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT count(*) FROM orders";
            command.ExecuteScalar();
        }
        _leaked = connection;   // ...and no Close(): this is what the holders table is for
    }

    public static void Release() => _leaked?.Dispose();
}
