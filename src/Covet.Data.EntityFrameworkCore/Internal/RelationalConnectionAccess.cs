using System.Data.Common;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore.Storage;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// Swaps the <see cref="DbConnection"/> an EF Core <see cref="RelationalConnection"/> holds, with no side effect.
/// </summary>
/// <remarks>
/// <para>Why not the public <c>IRelationalConnection.DbConnection</c> setter (<c>SetDbConnection</c>)? In EF Core 10 it
/// runs <c>ResetState(disposeDbConnection: true)</c> first: it disposes the previous connection when EF owns it, resets a
/// command timeout set with <c>Database.SetCommandTimeout</c>, forgets the ambient transactions EF enlisted in, and nulls
/// the configured connection string, so that while the provider's physical connection is swapped in
/// <c>IRelationalConnection.ConnectionString</c> is the physical connection's (password removed after open by Npgsql
/// and MySql.Data, <c>Pooling=false;Enlist=false</c> added by Covet), which breaks Npgsql's admin and clone connections
/// (EnsureCreated, EnsureDeleted, migrations) and turns Npgsql's <c>CurrentAmbientTransaction</c> off (it looks for
/// <c>Enlist=false</c> in that string).</para>
/// <para>So the swap writes the two private fields that hold the connection and its ownership, and nothing else.
/// <see cref="EnsureSupported"/> checks they exist with the expected types (EF Core 8 to 10 have them) so that an EF Core
/// version without them fails loudly when the options are validated, never silently at run time.</para>
/// </remarks>
internal static class RelationalConnectionAccess
{
    private const string ConnectionFieldName = "_connection";
    private const string OwnedFieldName = "_connectionOwned";

    private static readonly Lazy<string?> Problem = new(FindProblem);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = ConnectionFieldName)]
    private static extern ref DbConnection? ConnectionField(RelationalConnection connection);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = OwnedFieldName)]
    private static extern ref bool OwnedField(RelationalConnection connection);

    /// <summary>The connection EF holds now, without creating one (the public getter creates it lazily).</summary>
    public static DbConnection? Current(RelationalConnection connection) => ConnectionField(connection);

    /// <summary>Whether EF created (and so owns, and may dispose) the connection it holds.</summary>
    public static bool IsOwned(RelationalConnection connection) => OwnedField(connection);

    /// <summary>Makes EF use <paramref name="dbConnection"/> from now on, with the given ownership. No other state changes.</summary>
    public static void Swap(RelationalConnection connection, DbConnection? dbConnection, bool owned)
    {
        ConnectionField(connection) = dbConnection;
        OwnedField(connection) = owned;
    }

    /// <summary>Throws when this EF Core version's <see cref="RelationalConnection"/> does not have the fields the swap writes.</summary>
    public static void EnsureSupported()
    {
        if (Problem.Value is { } problem)
            throw new InvalidOperationException(
                $"Covet.Data.EntityFrameworkCore does not support this version of Microsoft.EntityFrameworkCore.Relational " +
                $"({typeof(RelationalConnection).Assembly.GetName().Version}): {problem} Use the Covet.Data.EntityFrameworkCore release built for your EF Core version.");
    }

    private static string? FindProblem()
    {
        const BindingFlags flags = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        var connection = typeof(RelationalConnection).GetField(ConnectionFieldName, flags);
        if (connection?.FieldType != typeof(DbConnection))
            return $"RelationalConnection has no field '{ConnectionFieldName}' of type DbConnection.";
        var owned = typeof(RelationalConnection).GetField(OwnedFieldName, flags);
        if (owned?.FieldType != typeof(bool))
            return $"RelationalConnection has no field '{OwnedFieldName}' of type bool.";
        return null;
    }
}
